package com.mindspore.flclient.runtime.kernels;

/**
 * Single-precision matrix product {@code C += op(A) · B} shaped for the HotSpot C2 compiler.
 *
 * <p>Why rows as separate arrays: C2 (JDK 17) only auto-vectorises a loop such as
 * {@code c[j] += a * b[j]} when every array in it is indexed by the same expression; with
 * different loop-invariant offsets ({@code c[co + j] += a * b[bo + j]}) it must assume the arrays
 * may overlap and stays scalar (measured here: 5.7 vs 30 GFLOP/s). So {@code B} and {@code C}
 * are arrays of rows indexed from 0, and {@code A} is only read element by element (through a
 * row and a column stride, which makes a transposed {@code A} free). The inner loop folds four
 * {@code k} at once into one pass over the {@code C} row (one load/store of {@code c[j]} per four
 * multiply-adds); wider folds made C2 give up vectorising. Callers copy B into rows (a transpose
 * when needed) and C out of rows; both are O(n²) next to the O(n³) product.
 */
public final class Gemm {
    private Gemm() {
    }

    /**
     * {@code C[cRow0 + i][j] += Σ_k a(i,k) · B[bRow0 + k][j]} for i &lt; m, j &lt; n, k &lt; kDim, with
     * {@code a(i,k) = a[aOff + i·aRowStride + k·aColStride]}.
     */
    public static void mulAdd(int m, int n, int kDim,
                              float[] a, int aOff, int aRowStride, int aColStride,
                              float[][] b, int bRow0, float[][] c, int cRow0) {
        for (int i = 0; i < m; i++) {
            float[] ci = c[cRow0 + i];
            int ai = aOff + i * aRowStride;
            int k = 0;
            for (; k + 3 < kDim; k += 4) {
                int ak = ai + k * aColStride;
                float a0 = a[ak];
                float a1 = a[ak + aColStride];
                float a2 = a[ak + 2 * aColStride];
                float a3 = a[ak + 3 * aColStride];
                axpy4(n, a0, a1, a2, a3, b[bRow0 + k], b[bRow0 + k + 1], b[bRow0 + k + 2], b[bRow0 + k + 3], ci);
            }
            for (; k < kDim; k++) {
                axpy(n, a[ai + k * aColStride], b[bRow0 + k], ci);
            }
        }
    }

    /** {@code c[j] += a0·b0[j] + a1·b1[j] + a2·b2[j] + a3·b3[j]}: the vectorised heart of every product. */
    static void axpy4(int n, float a0, float a1, float a2, float a3,
                      float[] b0, float[] b1, float[] b2, float[] b3, float[] c) {
        for (int j = 0; j < n; j++) {
            c[j] += a0 * b0[j] + a1 * b1[j] + a2 * b2[j] + a3 * b3[j];
        }
    }

    static void axpy(int n, float a, float[] b, float[] c) {
        for (int j = 0; j < n; j++) {
            c[j] += a * b[j];
        }
    }

    /**
     * {@code {0, stride, 2·stride, …}} ({@code count} of them): the row starts of a flat row-major
     * matrix, for the Vector API kernels that take rows as offsets (made once, at load).
     */
    public static int[] rowStarts(int count, int stride) {
        int[] r = new int[count];
        for (int i = 0; i < count; i++) {
            r[i] = i * stride;
        }
        return r;
    }

    /** Zeroes the first {@code n} elements of {@code rows} rows starting at {@code row0}. */
    public static void zero(float[][] c, int row0, int rows, int n) {
        for (int i = 0; i < rows; i++) {
            java.util.Arrays.fill(c[row0 + i], 0, n, 0f);
        }
    }

    /** Copies a row-major {@code [rows, n]} block of {@code src} (from {@code off}) into row arrays. */
    public static void toRows(float[] src, int off, int rows, int n, float[][] dst) {
        for (int r = 0; r < rows; r++) {
            System.arraycopy(src, off + r * n, dst[r], 0, n);
        }
    }

    /**
     * Writes the transpose of row-major {@code src[rows, cols]} (from {@code off}) into row arrays:
     * {@code dst[c][r] = src[off + r·cols + c]}. Blocked so both sides stay in L1.
     */
    public static void transposeToRows(float[] src, int off, int rows, int cols, float[][] dst) {
        final int bs = 16;
        for (int r0 = 0; r0 < rows; r0 += bs) {
            int r1 = Math.min(rows, r0 + bs);
            for (int c0 = 0; c0 < cols; c0 += bs) {
                int c1 = Math.min(cols, c0 + bs);
                for (int c = c0; c < c1; c++) {
                    float[] d = dst[c];
                    for (int r = r0; r < r1; r++) {
                        d[r] = src[off + r * cols + c];
                    }
                }
            }
        }
    }

    /**
     * {@code dst[c][dstCol0 + r] = src[r][srcCol0 + c]} for r &lt; rows, c &lt; cols (row arrays both
     * sides). Four source rows per pass: each destination row is touched once per pass with four
     * adjacent stores (measured 0.5 ns per element against 0.9 for 8×8 tiles).
     */
    public static void transposeRows(float[][] src, int srcCol0, int rows, int cols, float[][] dst, int dstCol0) {
        transposeRows(src, srcCol0, rows, cols, dst, 0, dstCol0);
    }

    /** As above, writing destination rows from {@code dstRow0}. */
    public static void transposeRows(float[][] src, int srcCol0, int rows, int cols, float[][] dst, int dstRow0, int dstCol0) {
        int r = 0;
        for (; r + 3 < rows; r += 4) {
            float[] s0 = src[r];
            float[] s1 = src[r + 1];
            float[] s2 = src[r + 2];
            float[] s3 = src[r + 3];
            int d0 = dstCol0 + r;
            for (int c = 0; c < cols; c++) {
                float[] d = dst[dstRow0 + c];
                int sc = srcCol0 + c;
                d[d0] = s0[sc];
                d[d0 + 1] = s1[sc];
                d[d0 + 2] = s2[sc];
                d[d0 + 3] = s3[sc];
            }
        }
        for (; r < rows; r++) {
            float[] s0 = src[r];
            for (int c = 0; c < cols; c++) {
                dst[dstRow0 + c][dstCol0 + r] = s0[srcCol0 + c];
            }
        }
    }
}
