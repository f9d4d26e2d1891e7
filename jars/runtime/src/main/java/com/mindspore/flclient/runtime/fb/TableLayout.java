package com.mindspore.flclient.runtime.fb;

import java.util.Arrays;
import java.util.Collections;
import java.util.List;

/** A table of the schema: its name and its fields in slot order (deprecated ones included, they keep their slot). */
public final class TableLayout {
    public final String name;
    public final List<FieldLayout> fields;

    public TableLayout(String name, FieldLayout... fields) {
        this.name = name;
        this.fields = Collections.unmodifiableList(Arrays.asList(fields.clone()));
    }

    @Override
    public String toString() {
        return "table " + name + " " + fields;
    }
}
