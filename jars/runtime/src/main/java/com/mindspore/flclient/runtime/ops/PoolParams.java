package com.mindspore.flclient.runtime.ops;

import com.mindspore.flclient.runtime.graph.NodeSpec;
import com.mindspore.flclient.runtime.kernels.ConvGeometry;

/** The window of MaxPool / AvgPool and their grads: {@code kernel}, {@code stride}, {@code pad} over NCHW input. */
final class PoolParams {
    final ConvGeometry geo;
    final int[] xShape;
    final int[] yShape;

    PoolParams(NodeSpec s, int[] xShape) {
        if (xShape.length != 4) {
            throw s.fail("input shape " + java.util.Arrays.toString(xShape) + " must be NCHW");
        }
        int[] kernel = s.attrs.getInts("kernel", 2, 1);
        int[] stride = s.attrs.getInts("stride", 2, 1);
        int[] pad = s.attrs.getInts("pad", 4, 0);
        geo = new ConvGeometry(xShape[0], xShape[1], xShape[2], xShape[3], kernel[0], kernel[1], stride, new int[] {1, 1}, pad);
        if (geo.ho < 1 || geo.wo < 1) {
            throw s.fail("the window " + java.util.Arrays.toString(kernel) + " does not fit the input "
                    + java.util.Arrays.toString(xShape));
        }
        this.xShape = xShape.clone();
        this.yShape = new int[] {xShape[0], xShape[1], geo.ho, geo.wo};
    }

    /** A 2×2 window with stride 2 and no padding (LeNet's): pooling ops have a fast path for it. */
    boolean isTwoByTwo() {
        return geo.kh == 2 && geo.kw == 2 && geo.strideH == 2 && geo.strideW == 2 && geo.padTop == 0
                && geo.padBottom == 0 && geo.padLeft == 0 && geo.padRight == 0;
    }

    /** Index in the channel plane of the window's first in-bounds row and column bounds, packed by callers. */
    int rowLo(int oh) {
        return Math.max(0, oh * geo.strideH - geo.padTop);
    }

    int rowHi(int oh) {
        return Math.min(geo.h, oh * geo.strideH - geo.padTop + geo.kh);
    }

    int colLo(int ow) {
        return Math.max(0, ow * geo.strideW - geo.padLeft);
    }

    int colHi(int ow) {
        return Math.min(geo.w, ow * geo.strideW - geo.padLeft + geo.kw);
    }
}
