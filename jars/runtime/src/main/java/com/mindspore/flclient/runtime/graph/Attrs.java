package com.mindspore.flclient.runtime.graph;

import com.mindspore.flclient.runtime.ModelFormatException;
import com.mindspore.flclient.runtime.schema.AttrKind;

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The attributes of one node, read once at load into plain Java values. Getters fail with the
 * node and attribute name when an attribute is missing or of the wrong kind, so an incomplete
 * file is refused at load instead of misbehaving in a training step.
 */
public final class Attrs {
    /** One attribute: its kind and the field that kind uses. */
    public record Attr(byte kind, long i, float f, String s, long[] ints, float[] floats, boolean b) {
    }

    private final String node;
    private final Map<String, Attr> map = new LinkedHashMap<>();

    public Attrs(String node) {
        this.node = node;
    }

    public void put(String name, Attr attr) {
        if (map.put(name, attr) != null) {
            throw new ModelFormatException("node '" + node + "' has attribute '" + name + "' twice");
        }
    }

    public Map<String, Attr> asMap() {
        return map;
    }

    private Attr get(String name, byte kind) {
        Attr a = map.get(name);
        if (a == null) {
            throw new ModelFormatException("node '" + node + "' lacks attribute '" + name + "' (" + AttrKind.name(kind)
                    + "); present: " + map.keySet());
        }
        if (a.kind != kind) {
            throw new ModelFormatException("node '" + node + "': attribute '" + name + "' is " + AttrKind.name(a.kind)
                    + ", expected " + AttrKind.name(kind));
        }
        return a;
    }

    public long getInt(String name) {
        return get(name, AttrKind.Int).i;
    }

    public float getFloat(String name) {
        return get(name, AttrKind.Float).f;
    }

    public float getFloat(String name, float dflt) {
        return map.containsKey(name) ? getFloat(name) : dflt;
    }

    /** Bools default to false when absent: every boolean attribute of the contract is an opt-in flag. */
    public boolean getBool(String name) {
        return map.containsKey(name) && get(name, AttrKind.Bool).b;
    }

    /** An Ints attribute of exactly {@code length} values, each within int range and at least {@code min}. */
    public int[] getInts(String name, int length, int min) {
        long[] v = get(name, AttrKind.Ints).ints;
        if (length >= 0 && v.length != length) {
            throw new ModelFormatException("node '" + node + "': attribute '" + name + "' has " + v.length
                    + " values " + Arrays.toString(v) + ", expected " + length);
        }
        int[] out = new int[v.length];
        for (int k = 0; k < v.length; k++) {
            if (v[k] < min || v[k] > Integer.MAX_VALUE) {
                throw new ModelFormatException("node '" + node + "': attribute '" + name + "' " + Arrays.toString(v)
                        + " has a value out of range (minimum " + min + ")");
            }
            out[k] = (int) v[k];
        }
        return out;
    }

    public boolean has(String name) {
        return map.containsKey(name);
    }
}
