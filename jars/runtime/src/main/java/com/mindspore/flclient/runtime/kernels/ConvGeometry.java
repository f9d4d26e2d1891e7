package com.mindspore.flclient.runtime.kernels;

/**
 * The index arithmetic of a 2-D convolution or pooling window over NCHW data, and the
 * im2col / col2im transforms that turn a convolution into a {@link Gemm} product.
 *
 * <p>Column matrices are arrays of rows (see {@link Gemm} for why): row {@code (c·kh + i)·kw + j}
 * holds, for each output pixel {@code p = oh·wo + ow}, the input value under kernel tap (i, j) of
 * channel c, at column {@code colOff + p} so that several images can sit side by side.
 */
public final class ConvGeometry {
    public final int n;
    public final int c;
    public final int h;
    public final int w;
    public final int kh;
    public final int kw;
    public final int strideH;
    public final int strideW;
    public final int dilH;
    public final int dilW;
    public final int padTop;
    public final int padBottom;
    public final int padLeft;
    public final int padRight;
    public final int ho;
    public final int wo;

    public ConvGeometry(int n, int c, int h, int w, int kh, int kw, int[] stride, int[] dilation, int[] pad) {
        this.n = n;
        this.c = c;
        this.h = h;
        this.w = w;
        this.kh = kh;
        this.kw = kw;
        this.strideH = stride[0];
        this.strideW = stride[1];
        this.dilH = dilation[0];
        this.dilW = dilation[1];
        this.padTop = pad[0];
        this.padBottom = pad[1];
        this.padLeft = pad[2];
        this.padRight = pad[3];
        this.ho = (h + padTop + padBottom - dilH * (kh - 1) - 1) / strideH + 1;
        this.wo = (w + padLeft + padRight - dilW * (kw - 1) - 1) / strideW + 1;
    }

    /** Output pixels per channel. */
    public int outPixels() {
        return ho * wo;
    }

    /** First ow whose input column ow·sw − pl + j·dw is ≥ 0. */
    private int owLo(int j) {
        int off = j * dilW - padLeft;
        return off >= 0 ? 0 : Math.min(wo, (-off + strideW - 1) / strideW);
    }

    /** One past the last ow whose input column is &lt; w. */
    private int owHi(int j) {
        int off = j * dilW - padLeft;
        int hi = w - 1 - off;
        return hi < 0 ? 0 : Math.min(wo, hi / strideW + 1);
    }

    /**
     * Col rows {@code [channels·kh·kw]} of one image: channels {@code [c0, c0 + channels)} of the
     * image starting at {@code x[xOff]}, written at columns {@code [colOff, colOff + ho·wo)}.
     */
    public void im2col(float[] x, int xOff, int c0, int channels, float[][] col, int colOff) {
        int r = 0;
        for (int ch = 0; ch < channels; ch++) {
            int xc = xOff + (c0 + ch) * h * w;
            for (int i = 0; i < kh; i++) {
                for (int j = 0; j < kw; j++, r++) {
                    float[] row = col[r];
                    int lo = owLo(j);
                    int hi = owHi(j);
                    int iwOff = j * dilW - padLeft;
                    for (int oh = 0; oh < ho; oh++) {
                        int ih = oh * strideH - padTop + i * dilH;
                        int dst = colOff + oh * wo;
                        if (ih < 0 || ih >= h || lo >= hi) {
                            java.util.Arrays.fill(row, dst, dst + wo, 0f);
                            continue;
                        }
                        if (lo > 0) {
                            java.util.Arrays.fill(row, dst, dst + lo, 0f);
                        }
                        if (hi < wo) {
                            java.util.Arrays.fill(row, dst + hi, dst + wo, 0f);
                        }
                        int src = xc + ih * w + iwOff;
                        if (strideW == 1) {
                            System.arraycopy(x, src + lo, row, dst + lo, hi - lo);
                        } else {
                            for (int ow = lo; ow < hi; ow++) {
                                row[dst + ow] = x[src + ow * strideW];
                            }
                        }
                    }
                }
            }
        }
    }

    /** The adjoint of {@link #im2col}: adds col rows back into the image at {@code dx[xOff]} (channels from c0). */
    public void col2imAdd(float[][] col, int colOff, float[] dx, int xOff, int c0, int channels) {
        int r = 0;
        for (int ch = 0; ch < channels; ch++) {
            int xc = xOff + (c0 + ch) * h * w;
            for (int i = 0; i < kh; i++) {
                for (int j = 0; j < kw; j++, r++) {
                    float[] row = col[r];
                    int lo = owLo(j);
                    int hi = owHi(j);
                    int iwOff = j * dilW - padLeft;
                    for (int oh = 0; oh < ho; oh++) {
                        int ih = oh * strideH - padTop + i * dilH;
                        if (ih < 0 || ih >= h) {
                            continue;
                        }
                        int src = colOff + oh * wo;
                        int dst = xc + ih * w + iwOff;
                        for (int ow = lo; ow < hi; ow++) {
                            dx[dst + ow * strideW] += row[src + ow];
                        }
                    }
                }
            }
        }
    }

    /** Padded input plane height and width. */
    public int paddedH() {
        return h + padTop + padBottom;
    }

    public int paddedW() {
        return w + padLeft + padRight;
    }

    /**
     * Columns per image in the "wide" layout of a stride-1 convolution: output pixel (oh, ow) sits at
     * column {@code oh·Wp + ow} (Wp the padded width), so each kernel tap's row is one contiguous
     * slice of the padded input plane — one copy instead of one per output row. The columns with
     * ow ≥ wo are computed and discarded (a few percent more work for 5×5 kernels on 32×32).
     */
    public int wideLength() {
        return (ho - 1) * paddedW() + wo;
    }

    public boolean isStrideOne() {
        return strideH == 1 && strideW == 1;
    }

    public boolean isPadded() {
        return padTop != 0 || padBottom != 0 || padLeft != 0 || padRight != 0;
    }

    /**
     * Wide-layout col rows of one image for a stride-1 convolution (see {@link #wideLength}).
     * {@code planes} is scratch of {@code channels·Hp·Wp} floats used when the input is padded.
     */
    public void im2colWide(float[] x, int xOff, int c0, int channels, float[][] col, int colOff, float[] planes) {
        int hp = paddedH();
        int wp = paddedW();
        int len = wideLength();
        float[] src = x;
        int base = xOff + c0 * h * w;
        int planeSize = h * w;
        if (isPadded()) {
            for (int ch = 0; ch < channels; ch++) {
                int dst = ch * hp * wp;
                for (int r = 0; r < h; r++) {
                    System.arraycopy(x, base + ch * planeSize + r * w, planes, dst + (r + padTop) * wp + padLeft, w);
                }
            }
            src = planes;
            base = 0;
            planeSize = hp * wp;
        }
        int r = 0;
        for (int ch = 0; ch < channels; ch++) {
            for (int i = 0; i < kh; i++) {
                for (int j = 0; j < kw; j++, r++) {
                    System.arraycopy(src, base + ch * planeSize + i * dilH * wp + j * dilW, col[r], colOff, len);
                }
            }
        }
    }

    /** Copies the valid columns of a wide-layout output row into {@code y[yOff..]} ({@code ho·wo} values). */
    public void scatterWide(float[] wide, int off, float[] y, int yOff) {
        int wp = paddedW();
        for (int oh = 0; oh < ho; oh++) {
            System.arraycopy(wide, off + oh * wp, y, yOff + oh * wo, wo);
        }
    }

    /** Floats per padded channel plane. */
    public int planeSize() {
        return paddedH() * paddedW();
    }

    /** Plane offsets of every kernel tap (c, i, j) of {@code channels} channels, in filter order. */
    public int[] taps(int channels) {
        int[] t = new int[channels * kh * kw];
        int k = 0;
        for (int ch = 0; ch < channels; ch++) {
            for (int i = 0; i < kh; i++) {
                for (int j = 0; j < kw; j++) {
                    t[k++] = ch * planeSize() + i * dilH * paddedW() + j * dilW;
                }
            }
        }
        return t;
    }

    /** Copies channels {@code [c0, c0 + channels)} of the image at {@code x[xOff]} into padded planes (borders stay zero). */
    public void toPlanes(float[] x, int xOff, int c0, int channels, float[] planes, int planesOff) {
        int wp = paddedW();
        for (int ch = 0; ch < channels; ch++) {
            int src = xOff + (c0 + ch) * h * w;
            int dst = planesOff + ch * planeSize() + padTop * wp + padLeft;
            for (int r = 0; r < h; r++) {
                System.arraycopy(x, src + r * w, planes, dst + r * wp, w);
            }
        }
    }

    /** Adds the interior of padded planes back into channels {@code [c0, c0 + channels)} of the image at {@code dx[xOff]}. */
    public void fromPlanesAdd(float[] planes, float[] dx, int xOff, int c0, int channels) {
        int wp = paddedW();
        for (int ch = 0; ch < channels; ch++) {
            int dst = xOff + (c0 + ch) * h * w;
            int src = ch * planeSize() + padTop * wp + padLeft;
            for (int r = 0; r < h; r++) {
                int d = dst + r * w;
                int sr = src + r * wp;
                for (int c = 0; c < w; c++) {
                    dx[d + c] += planes[sr + c];
                }
            }
        }
    }

    /** Writes one image's {@code [channels, ho, wo]} block of {@code y} into wide rows {@code wide[wOff + o·lr + oh·Wp + ow]}. */
    public void toWide(float[] y, int yOff, int channels, float[] wide, int wOff, int lr) {
        int wp = paddedW();
        for (int o = 0; o < channels; o++) {
            for (int oh = 0; oh < ho; oh++) {
                System.arraycopy(y, yOff + (o * ho + oh) * wo, wide, wOff + o * lr + oh * wp, wo);
            }
        }
    }

    /**
     * The adjoint of {@link #im2colWide}: adds each wide col row onto the (padded) planes at its
     * tap's offset, {@code planes[planesOff + taps[k] + q] += col[k][colOff + q]} for q &lt; wideLength.
     */
    public void col2imWideAdd(float[][] col, int colOff, int[] taps, float[] planes, int planesOff) {
        int len = wideLength();
        for (int k = 0; k < taps.length; k++) {
            float[] row = col[k];
            int dst = planesOff + taps[k];
            for (int q = 0; q < len; q++) {
                planes[dst + q] += row[colOff + q];
            }
        }
    }

    /** Writes one image's dy block into wide rows {@code rows[o][colOff + oh·Wp + ow]} (other columns untouched: zero). */
    public void toWideRows(float[] y, int yOff, int channels, float[][] rows, int colOff) {
        int wp = paddedW();
        for (int o = 0; o < channels; o++) {
            for (int oh = 0; oh < ho; oh++) {
                System.arraycopy(y, yOff + (o * ho + oh) * wo, rows[o], colOff + oh * wp, wo);
            }
        }
    }
}
