package com.mindspore.flclient.runtime.fb;

import com.google.flatbuffers.BaseVector;
import com.google.flatbuffers.FlatBufferBuilder;
import com.google.flatbuffers.Table;

import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Random;

/**
 * Test buffers for any table of the schemas, driven by the same layouts as the verifier, and a
 * reader that calls every generated accessor of a table (found by reflection), recursively.
 */
final class SchemaBuffers {
    private static final String[] TEXTS = {"", "a", "lenet.conv1.weight", "é", "中文", "x\u0001y"};
    private static final String[] PACKAGES = {"mindspore.schema.", "com.mindspore.flclient.runtime.schema."};

    private SchemaBuffers() {
    }

    /** A buffer of {@code table} with every field present (vectors of 0..3 elements), random values. */
    static byte[] build(TableLayout table, long seed, String fileIdentifier) {
        FlatBufferBuilder b = new FlatBufferBuilder(64);
        b.forceDefaults(true);
        int root = table(b, table, new Random(seed), 0);
        if (fileIdentifier == null) {
            b.finish(root);
        } else {
            b.finish(root, fileIdentifier);
        }
        return b.sizedByteArray();
    }

    private static int table(FlatBufferBuilder b, TableLayout table, Random r, int depth) {
        // children first: a FlatBufferBuilder cannot nest an object inside a table under construction
        int[] offsets = new int[table.fields.size()];
        for (FieldLayout f : table.fields) {
            switch (f.kind) {
                case STRING:
                    offsets[f.slot] = b.createString(TEXTS[r.nextInt(TEXTS.length)]);
                    break;
                case TABLE:
                    offsets[f.slot] = table(b, f.ref(), r, depth + 1);
                    break;
                case VECTOR:
                    offsets[f.slot] = vector(b, f, r, depth);
                    break;
                default:
            }
        }
        b.startTable(table.fields.size());
        for (FieldLayout f : table.fields) {
            if (f.kind == FieldLayout.Kind.SCALAR) {
                long v = r.nextLong();
                switch (f.size) {
                    case 1:
                        b.addByte(f.slot, (byte) (v & 1), 0); // bools must stay 0/1 to round-trip
                        break;
                    case 2:
                        b.addShort(f.slot, (short) v, 0);
                        break;
                    case 4:
                        b.addInt(f.slot, (int) v, 0);
                        break;
                    default:
                        b.addLong(f.slot, v, 0);
                }
            } else {
                b.addOffset(f.slot, offsets[f.slot], 0);
            }
        }
        return b.endTable();
    }

    private static int vector(FlatBufferBuilder b, FieldLayout f, Random r, int depth) {
        int n = r.nextInt(4);
        if (f.element == FieldLayout.Kind.SCALAR) {
            b.startVector(f.elementSize, n, f.elementSize);
            for (int i = 0; i < n; i++) {
                long v = r.nextLong();
                switch (f.elementSize) {
                    case 1:
                        b.addByte((byte) (v & 1));
                        break;
                    case 2:
                        b.addShort((short) v);
                        break;
                    case 4:
                        b.addInt((int) v);
                        break;
                    default:
                        b.addLong(v);
                }
            }
            return b.endVector();
        }
        int[] items = new int[n];
        for (int i = 0; i < n; i++) {
            items[i] = f.element == FieldLayout.Kind.STRING ? b.createString(TEXTS[r.nextInt(TEXTS.length)])
                    : table(b, f.ref(), r, depth + 1);
        }
        b.startVector(4, n, 4);
        for (int i = n - 1; i >= 0; i--) {
            b.addOffset(items[i]);
        }
        return b.endVector();
    }

    /** The generated root object of {@code table} over {@code bytes}. */
    static Table root(TableLayout table, byte[] bytes) {
        ByteBuffer bb = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
        Class<?> cls = generatedClass(table);
        return (Table) call(cls, "getRootAs" + table.name, null, new Object[] {bb}, ByteBuffer.class);
    }

    /** Calls every accessor of the table and of every table it reaches; an exception from any is rethrown. */
    static void readAll(Table t) {
        for (Method m : t.getClass().getDeclaredMethods()) {
            if (!Modifier.isPublic(m.getModifiers()) || Modifier.isStatic(m.getModifiers()) || m.getName().startsWith("__")
                    || BaseVector.class.isAssignableFrom(m.getReturnType())) {
                continue;
            }
            Class<?>[] params = m.getParameterTypes();
            if (params.length == 0) {
                visit(invoke(m, t));
            } else if (params.length == 1 && params[0] == int.class) {
                int n = (Integer) invoke(lookup(t.getClass(), m.getName() + "Length"), t);
                for (int j = 0; j < n; j++) {
                    visit(invoke(m, t, j));
                }
            }
        }
    }

    private static void visit(Object value) {
        if (value instanceof Table) {
            readAll((Table) value);
        } else if (value instanceof ByteBuffer) {
            ByteBuffer bb = (ByteBuffer) value;
            while (bb.hasRemaining()) {
                bb.get();
            }
        }
    }

    private static Class<?> generatedClass(TableLayout table) {
        for (String p : PACKAGES) {
            try {
                return Class.forName(p + table.name);
            } catch (ClassNotFoundException e) {
                // next package
            }
        }
        throw new AssertionError("no generated class for table " + table.name);
    }

    private static Method lookup(Class<?> cls, String name, Class<?>... params) {
        try {
            return cls.getMethod(name, params);
        } catch (NoSuchMethodException e) {
            throw new AssertionError(e);
        }
    }

    private static Object call(Class<?> cls, String name, Object target, Object[] args, Class<?>... params) {
        return invoke(lookup(cls, name, params), target, args);
    }

    private static Object invoke(Method m, Object target, Object... args) {
        try {
            return m.invoke(target, args);
        } catch (IllegalAccessException e) {
            throw new AssertionError(e);
        } catch (InvocationTargetException e) {
            Throwable cause = e.getCause();
            if (cause instanceof RuntimeException) {
                throw (RuntimeException) cause;
            }
            throw new AssertionError(cause);
        }
    }
}
