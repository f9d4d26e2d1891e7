package com.mindspore.flclient;

import com.google.flatbuffers.FlatBufferBuilder;

import java.lang.reflect.Method;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.zip.CRC32;

/**
 * The Java half of tests/test_wire_java_python.py: writes one buffer per protocol table with
 * the generated Java classes, and reads buffers written by Python back as JSON. Both halves
 * fill every field with the same value rule (from a CRC32 of "Table.field#salt"), so a field
 * that one language puts where the other does not look shows up as a difference.
 *
 * <pre>
 * java -cp mindspore-lite-java-flclient.jar WireTool.java write SPEC OUT_DIR   # OUT_DIR/Table.bin
 * java -cp mindspore-lite-java-flclient.jar WireTool.java read  SPEC IN_DIR    # JSON on stdout
 * </pre>
 * SPEC: one line per field, "Table field type", in schema order; types int, float, bool,
 * string, enum:N (byte enum of N values), table:T, and vectors [float] [ubyte] [byte] [int] [string]
 * [enum:N] [table:T].
 */
public final class WireTool {
    private static final String PKG = "mindspore.schema.";

    private final Map<String, List<String[]>> spec = new LinkedHashMap<>();

    private WireTool(Path specFile) throws Exception {
        for (String line : Files.readAllLines(specFile)) {
            if (line.isBlank()) {
                continue;
            }
            String[] f = line.strip().split(" ");
            spec.computeIfAbsent(f[0], k -> new ArrayList<>()).add(new String[] {f[1], f[2]});
        }
    }

    public static void main(String[] args) throws Exception {
        WireTool tool = new WireTool(Path.of(args[1]));
        Path dir = Path.of(args[2]);
        if (args[0].equals("write")) {
            for (String table : tool.spec.keySet()) {
                FlatBufferBuilder b = new FlatBufferBuilder(256);
                b.finish(tool.build(b, table, 0));
                Files.write(dir.resolve(table + ".bin"), b.sizedByteArray());
            }
        } else {
            StringBuilder json = new StringBuilder("{");
            boolean first = true;
            for (String table : tool.spec.keySet()) {
                Path f = dir.resolve(table + ".bin");
                if (!Files.exists(f)) {
                    continue;
                }
                ByteBuffer bb = ByteBuffer.wrap(Files.readAllBytes(f)).order(ByteOrder.LITTLE_ENDIAN);
                Object root = Class.forName(PKG + table).getMethod("getRootAs" + table, ByteBuffer.class).invoke(null, bb);
                json.append(first ? "" : ",").append(quote(table)).append(':');
                tool.dump(json, table, root);
                first = false;
            }
            System.out.println(json.append('}'));
        }
    }

    // ---- the value rule (same as the Python half) ----

    static long crc(String key) {
        CRC32 c = new CRC32();
        c.update(key.getBytes(StandardCharsets.UTF_8));
        return c.getValue();
    }

    static int intValue(String key) {
        return (int) (crc(key) % 200001) - 100000;
    }

    static float floatValue(String key) {
        return ((int) (crc(key) % 2001) - 1000) / 8.0f;
    }

    static int enumValue(String key, int n) {
        return 1 + (int) (crc(key) % (n - 1));
    }

    static float[] floatVector(String key) {
        return new float[] {(crc(key) % 97) / 4.0f, -1.5f, 3.25f};
    }

    static byte[] ubyteVector(String key) {
        return new byte[] {(byte) (crc(key) % 256), 0, (byte) 255, 7};
    }

    static byte[] byteVector(String key) {
        return new byte[] {(byte) (crc(key) % 256 - 128), -128, 127, 7};
    }

    static int[] intVector(String key) {
        return new int[] {(int) (crc(key) % 200001) - 100000, -1, Integer.MAX_VALUE};
    }

    // ---- writing ----

    private static String camel(String field) {
        StringBuilder sb = new StringBuilder();
        boolean up = false;
        for (char ch : field.toCharArray()) {
            if (ch == '_') {
                up = true;
            } else {
                sb.append(up ? Character.toUpperCase(ch) : ch);
                up = false;
            }
        }
        return sb.toString();
    }

    private static String upper(String field) {
        String c = camel(field);
        return Character.toUpperCase(c.charAt(0)) + c.substring(1);
    }

    private static Method method(Class<?> c, String name, int params) {
        for (Method m : c.getMethods()) {
            if (m.getName().equals(name) && m.getParameterCount() == params) {
                return m;
            }
        }
        throw new IllegalArgumentException(c.getName() + " has no method " + name);
    }

    private static Method method(Class<?> c, String name, Class<?>... types) throws NoSuchMethodException {
        return c.getMethod(name, types);
    }

    /** Builds a table filled by the value rule; returns its offset. */
    private int build(FlatBufferBuilder b, String table, int salt) throws Exception {
        Class<?> c = Class.forName(PKG + table);
        List<String[]> fields = spec.get(table);
        Object[] offsets = new Object[fields.size()];
        // Children (strings, vectors, tables) must be built before the table starts.
        for (int i = 0; i < fields.size(); i++) {
            String field = fields.get(i)[0];
            String type = fields.get(i)[1];
            String key = table + "." + field + "#" + salt;
            String vec = "create" + upper(field) + "Vector";
            if (type.equals("string")) {
                offsets[i] = b.createString(key);
            } else if (type.equals("[float]")) {
                offsets[i] = method(c, vec, FlatBufferBuilder.class, float[].class).invoke(null, b, floatVector(key));
            } else if (type.equals("[ubyte]")) {
                offsets[i] = method(c, vec, FlatBufferBuilder.class, byte[].class).invoke(null, b, ubyteVector(key));
            } else if (type.equals("[byte]")) {
                offsets[i] = method(c, vec, FlatBufferBuilder.class, byte[].class).invoke(null, b, byteVector(key));
            } else if (type.equals("[int]")) {
                offsets[i] = method(c, vec, FlatBufferBuilder.class, int[].class).invoke(null, b, intVector(key));
            } else if (type.startsWith("[enum:")) {
                int n = Integer.parseInt(type.substring(6, type.length() - 1));
                byte[] v = {(byte) enumValue(key, n), 0};
                offsets[i] = method(c, vec, FlatBufferBuilder.class, byte[].class).invoke(null, b, v);
            } else if (type.equals("[string]")) {
                int[] strs = {b.createString(key + "/0"), b.createString(key + "/1")};
                offsets[i] = method(c, vec, FlatBufferBuilder.class, int[].class).invoke(null, b, strs);
            } else if (type.startsWith("[table:")) {
                String child = type.substring(7, type.length() - 1);
                int[] elems = {build(b, child, 0), build(b, child, 1)};
                offsets[i] = method(c, vec, FlatBufferBuilder.class, int[].class).invoke(null, b, elems);
            } else if (type.startsWith("table:")) {
                offsets[i] = build(b, type.substring(6), salt);
            }
        }
        method(c, "start" + table, 1).invoke(null, b);
        for (int i = 0; i < fields.size(); i++) {
            String field = fields.get(i)[0];
            String type = fields.get(i)[1];
            String key = table + "." + field + "#" + salt;
            Method add = method(c, "add" + upper(field), 2);
            if (type.equals("int")) {
                add.invoke(null, b, intValue(key));
            } else if (type.equals("float")) {
                add.invoke(null, b, floatValue(key));
            } else if (type.equals("bool")) {
                add.invoke(null, b, true);
            } else if (type.startsWith("enum:")) {
                add.invoke(null, b, (byte) enumValue(key, Integer.parseInt(type.substring(5))));
            } else {
                add.invoke(null, b, (int) offsets[i]);
            }
        }
        return (int) method(c, "end" + table, 1).invoke(null, b);
    }

    // ---- reading ----

    private void dump(StringBuilder json, String table, Object obj) throws Exception {
        Class<?> c = obj.getClass();
        json.append('{');
        boolean first = true;
        for (String[] f : spec.get(table)) {
            String field = f[0];
            String type = f[1];
            String acc = camel(field);
            json.append(first ? "" : ",").append(quote(field)).append(':');
            first = false;
            if (type.startsWith("[")) {
                int n = (int) c.getMethod(acc + "Length").invoke(obj);
                json.append('[');
                for (int j = 0; j < n; j++) {
                    json.append(j == 0 ? "" : ",");
                    Object v = c.getMethod(acc, int.class).invoke(obj, j);
                    if (type.startsWith("[table:")) {
                        dump(json, type.substring(7, type.length() - 1), v);
                    } else {
                        scalar(json, v);
                    }
                }
                json.append(']');
            } else {
                Object v = c.getMethod(acc).invoke(obj);
                if (type.startsWith("table:")) {
                    if (v == null) {
                        json.append("null");
                    } else {
                        dump(json, type.substring(6), v);
                    }
                } else {
                    scalar(json, v);
                }
            }
        }
        json.append('}');
    }

    private static void scalar(StringBuilder json, Object v) {
        if (v == null) {
            json.append("null");
        } else if (v instanceof String) {
            json.append(quote((String) v));
        } else if (v instanceof Float) {
            json.append(Double.toString((Float) v));
        } else {
            json.append(v);
        }
    }

    private static String quote(String s) {
        StringBuilder sb = new StringBuilder("\"");
        for (char ch : s.toCharArray()) {
            if (ch == '"' || ch == '\\') {
                sb.append('\\');
            }
            if (ch < 0x20) {
                sb.append(String.format("\\u%04x", (int) ch));
            } else {
                sb.append(ch);
            }
        }
        return sb.append('"').toString();
    }
}
