package com.mindspore.flclient.runtime.ops;

import com.mindspore.flclient.runtime.graph.NodeSpec;
import com.mindspore.flclient.runtime.graph.Value;
import com.mindspore.flclient.runtime.kernels.ConvGeometry;
import com.mindspore.flclient.runtime.kernels.VectorConv;

/**
 * What Conv2D and its two backprops share: the attributes of docs/ms-format.md and the shapes
 * they imply, checked once at load. {@code x} is {@code [N,C,H,W]}, the filter
 * {@code [O, C/group, kh, kw]}, {@code dy/y} is {@code [N,O,Ho,Wo]}.
 */
final class ConvParams {
    final int group;
    final int o;
    final int cg;
    final int og;
    final int kg;
    final ConvGeometry geo;
    final int[] xShape;
    final int[] wShape;
    final int[] yShape;

    ConvParams(NodeSpec s, int[] xShape, int[] wShape) {
        if (xShape.length != 4 || wShape.length != 4) {
            throw s.fail("input shape " + java.util.Arrays.toString(xShape) + " and filter shape "
                    + java.util.Arrays.toString(wShape) + " must both have rank 4 (NCHW, OIHW)");
        }
        this.group = (int) s.attrs.getInt("group");
        int[] stride = s.attrs.getInts("stride", 2, 1);
        int[] dilation = s.attrs.getInts("dilation", 2, 1);
        int[] pad = s.attrs.getInts("pad", 4, 0);
        this.o = wShape[0];
        this.cg = wShape[1];
        if (group < 1 || xShape[1] != cg * group || o % group != 0) {
            throw s.fail("channels do not fit: input " + java.util.Arrays.toString(xShape) + ", filter "
                    + java.util.Arrays.toString(wShape) + ", group " + group);
        }
        this.og = o / group;
        this.kg = cg * wShape[2] * wShape[3];
        this.geo = new ConvGeometry(xShape[0], xShape[1], xShape[2], xShape[3], wShape[2], wShape[3], stride, dilation, pad);
        if (geo.ho < 1 || geo.wo < 1) {
            throw s.fail("the filter " + java.util.Arrays.toString(wShape) + " does not fit the padded input "
                    + java.util.Arrays.toString(xShape));
        }
        this.xShape = xShape.clone();
        this.wShape = wShape.clone();
        this.yShape = new int[] {xShape[0], o, geo.ho, geo.wo};
    }

    /** Reads a shape given as an Ints(4) attribute (input_shape, filter_shape). */
    static int[] shapeAttr(NodeSpec s, String name) {
        return s.attrs.getInts(name, 4, 1);
    }

    /** How many images one product handles: enough columns (~512) to keep the vector loops long. */
    int imagesPerBlock() {
        int p = geo.outPixels();
        return Math.max(1, Math.min(geo.n, 512 / p));
    }

    static void requireRank4(NodeSpec s, Value v, String what) {
        s.requireRank(v, 4, what);
    }

    /** The two inputs of a convolution op, both of rank 4 ({@code first}, {@code second} name them in errors). */
    static void requireInputs(NodeSpec s, String first, String second) {
        s.requireInputs(2);
        requireRank4(s, s.input(0), first);
        requireRank4(s, s.input(1), second);
    }

    /** Columns per row of the Vector API kernels ({@link VectorConv}): the wide length in whole vectors. Vector path only. */
    int vectorColumns() {
        return VectorConv.roundUp(geo.wideLength());
    }

    /** One group's zero-padded input planes for the Vector API kernels, with slack for the last row of {@code lr} columns. */
    float[] vectorPlanes(int lr) {
        return new float[cg * geo.planeSize() + lr - geo.wideLength()];
    }

    /** One group's zero-padded input planes for the plain wide (stride-1) path; null when it needs none (unpadded or strided). */
    float[] widePlanes() {
        return geo.isStrideOne() && geo.isPadded() ? new float[cg * geo.planeSize()] : null;
    }
}
