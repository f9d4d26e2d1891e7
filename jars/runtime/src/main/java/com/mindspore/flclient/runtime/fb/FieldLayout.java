package com.mindspore.flclient.runtime.fb;

import java.util.function.Supplier;

/**
 * One field of a table as the verifier needs it: its vtable slot, what it holds and how wide it
 * is. Built only by the generated {@code SchemaLayouts}; a table reference is a supplier so that
 * layouts can refer to tables declared after them.
 */
public final class FieldLayout {
    /** What a field holds: an inline scalar (enums included), or an offset to a string, table or vector. */
    public enum Kind { SCALAR, STRING, TABLE, VECTOR }

    public final String name;
    public final int slot;
    public final Kind kind;
    /** Byte width of a scalar field. */
    public final int size;
    /** Element kind of a vector (SCALAR, STRING or TABLE), else null. */
    public final Kind element;
    /** Byte width of the elements of a vector of scalars. */
    public final int elementSize;
    public final boolean required;
    private final Supplier<TableLayout> ref;

    private FieldLayout(String name, int slot, Kind kind, int size, Kind element, int elementSize,
                        Supplier<TableLayout> ref, boolean required) {
        this.name = name;
        this.slot = slot;
        this.kind = kind;
        this.size = size;
        this.element = element;
        this.elementSize = elementSize;
        this.ref = ref;
        this.required = required;
    }

    public static FieldLayout scalar(int slot, String name, int size) {
        return new FieldLayout(name, slot, Kind.SCALAR, size, null, 0, null, false);
    }

    public static FieldLayout string(int slot, String name) {
        return new FieldLayout(name, slot, Kind.STRING, 0, null, 0, null, false);
    }

    public static FieldLayout table(int slot, String name, Supplier<TableLayout> ref) {
        return new FieldLayout(name, slot, Kind.TABLE, 0, null, 0, ref, false);
    }

    public static FieldLayout scalars(int slot, String name, int elementSize) {
        return new FieldLayout(name, slot, Kind.VECTOR, 0, Kind.SCALAR, elementSize, null, false);
    }

    public static FieldLayout strings(int slot, String name) {
        return new FieldLayout(name, slot, Kind.VECTOR, 0, Kind.STRING, 0, null, false);
    }

    public static FieldLayout tables(int slot, String name, Supplier<TableLayout> ref) {
        return new FieldLayout(name, slot, Kind.VECTOR, 0, Kind.TABLE, 0, ref, false);
    }

    /** The same field, marked {@code (required)} in the schema. */
    public FieldLayout required() {
        return new FieldLayout(name, slot, kind, size, element, elementSize, ref, true);
    }

    /** The table a TABLE field or a vector of tables refers to, else null. */
    public TableLayout ref() {
        return ref == null ? null : ref.get();
    }

    @Override
    public String toString() {
        String type;
        if (kind == Kind.VECTOR) {
            type = "[" + (element == Kind.TABLE ? ref().name : element == Kind.SCALAR ? elementSize + "-byte scalar" : "string") + "]";
        } else {
            type = kind == Kind.TABLE ? ref().name : kind == Kind.SCALAR ? size + "-byte scalar" : "string";
        }
        return name + ": " + type + " @" + slot + (required ? " (required)" : "");
    }
}
