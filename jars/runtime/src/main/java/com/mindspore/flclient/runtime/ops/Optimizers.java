package com.mindspore.flclient.runtime.ops;

import com.mindspore.flclient.runtime.graph.Kernel;
import com.mindspore.flclient.runtime.graph.NodeSpec;
import com.mindspore.flclient.runtime.graph.Value;
import com.mindspore.flclient.runtime.schema.TensorRole;

/**
 * The ops that update Parameter tensors in place, after every gradient of a step: the optimizers
 * ApplyMomentum, SGD and Adam, and Assign / AssignAdd (global_step, Adam's beta powers), with the
 * checks they share ({@link InPlace}). Which inputs each updates is {@code in_place} in
 * schema/ops.json.
 */
final class Optimizers {
    private Optimizers() {
    }

    /** Checks shared by the ops that update Parameter tensors in place (optimizers, Assign, AssignAdd). */
    static final class InPlace {
        private InPlace() {
        }

        /** The tensor at {@code k} must be a Parameter: only those are state that survives a step and is saved. */
        static Value parameter(NodeSpec s, int k, String what) {
            Value v = s.input(k);
            if (v.role != TensorRole.Parameter) {
                throw s.fail(what + " " + v.describe() + " is updated in place and must be a Parameter, not "
                        + TensorRole.name(v.role));
            }
            return v;
        }

        /** A scalar operand (lr, momentum, beta…): one float. */
        static float[] scalar(NodeSpec s, int k, String what) {
            Value v = s.input(k);
            if (v.numel != 1) {
                throw s.fail(what + " " + v.describe() + " must be a single value");
            }
            return v.floats(s.name);
        }

        static void sameShape(NodeSpec s, Value ref, int k, String what) {
            s.requireShape(s.input(k), ref.shape, what);
        }

        /** Optimizer state beside {@code ref} (accum, m, v, stat): a Parameter of ref's shape. */
        static void stateLike(NodeSpec s, Value ref, int k, String what) {
            parameter(s, k, what);
            sameShape(s, ref, k, what);
        }

        /**
         * The arrays of an in-place update {@code ref ← f(ref, value)} (inputs 0 and 1) that works on
         * float or int32 tensors: both of one type, the other pair null.
         */
        static final class RefAndValue {
            final float[] rf;
            final float[] vf;
            final int[] ri;
            final int[] vi;

            RefAndValue(NodeSpec s, Value ref, Value val) {
                if (val.isFloat() != ref.isFloat()) {
                    throw s.fail("value " + val.describe() + " and ref " + ref.describe() + " differ in type");
                }
                rf = ref.isFloat() ? s.floatIn(0) : null;
                vf = ref.isFloat() ? s.floatIn(1) : null;
                ri = ref.isFloat() ? null : s.intIn(0);
                vi = ref.isFloat() ? null : s.intIn(1);
            }
        }
    }

    /**
     * ApplyMomentum (var, accum, lr, grad, momentum), in place: {@code accum ← momentum·accum + grad};
     * {@code var ← var − lr·accum}, or with {@code use_nesterov} {@code var ← var − lr·(grad + momentum·accum)}.
     */
    static final class ApplyMomentum implements Kernel {
        private final float[] var;
        private final float[] accum;
        private final float[] lr;
        private final float[] grad;
        private final float[] momentum;
        private final boolean nesterov;

        ApplyMomentum(NodeSpec s) {
            s.requireInputs(5);
            Value v = InPlace.parameter(s, 0, "var");
            InPlace.stateLike(s, v, 1, "accum");
            InPlace.sameShape(s, v, 3, "grad");
            var = s.floatIn(0);
            accum = s.floatIn(1);
            lr = InPlace.scalar(s, 2, "lr");
            grad = s.floatIn(3);
            momentum = InPlace.scalar(s, 4, "momentum");
            nesterov = s.attrs.getBool("use_nesterov");
            s.aliasOptionalOut(0, v);
        }

        @Override
        public void run() {
            float l = lr[0];
            float m = momentum[0];
            if (nesterov) {
                for (int i = 0; i < var.length; i++) {
                    accum[i] = m * accum[i] + grad[i];
                    var[i] -= l * (grad[i] + m * accum[i]);
                }
            } else {
                for (int i = 0; i < var.length; i++) {
                    accum[i] = m * accum[i] + grad[i];
                    var[i] -= l * accum[i];
                }
            }
        }
    }

    /**
     * MindSpore's SGD primitive (var, grad, lr, accum, momentum, stat), in place, as its CPU kernel
     * computes it: {@code g = grad + weight_decay·var}; with momentum &gt; 0, {@code accum = g} on the
     * first step ({@code stat &gt; 0}, then stat ← 0) else {@code accum = momentum·accum + (1 − dampening)·g},
     * and {@code g = nesterov ? g + momentum·accum : accum}; finally {@code var ← var − lr·g}.
     */
    static final class SGD implements Kernel {
        private final float[] var;
        private final float[] grad;
        private final float[] lr;
        private final float[] accum;
        private final float[] momentum;
        private final float[] stat;
        private final float dampening;
        private final float weightDecay;
        private final boolean nesterov;

        SGD(NodeSpec s) {
            s.requireInputs(6);
            Value v = InPlace.parameter(s, 0, "var");
            InPlace.sameShape(s, v, 1, "grad");
            InPlace.stateLike(s, v, 3, "accum");
            InPlace.stateLike(s, v, 5, "stat");
            var = s.floatIn(0);
            grad = s.floatIn(1);
            lr = InPlace.scalar(s, 2, "lr");
            accum = s.floatIn(3);
            momentum = InPlace.scalar(s, 4, "momentum");
            stat = s.floatIn(5);
            dampening = s.attrs.getFloat("dampening", 0f);
            weightDecay = s.attrs.getFloat("weight_decay", 0f);
            nesterov = s.attrs.getBool("nesterov");
            s.aliasOptionalOut(0, v);
        }

        @Override
        public void run() {
            float l = lr[0];
            float m = momentum[0];
            for (int i = 0; i < var.length; i++) {
                float g = grad[i];
                if (weightDecay > 0f) {
                    g += var[i] * weightDecay;
                }
                if (m > 0f) {
                    if (stat[i] > 0f) {
                        accum[i] = g;
                        stat[i] = 0f;
                    } else {
                        accum[i] = accum[i] * m + (1f - dampening) * g;
                    }
                    g = nesterov ? g + accum[i] * m : accum[i];
                }
                var[i] -= l * g;
            }
        }
    }

    /**
     * MindSpore's Adam primitive (var, m, v, beta1_power, beta2_power, lr, beta1, beta2, epsilon,
     * grad), in place: {@code lr_t = lr·√(1 − β2^t)/(1 − β1^t)}, {@code m += (g − m)(1 − β1)},
     * {@code v += (g² − v)(1 − β2)}, {@code var −= lr_t·m/(√v + ε)} (nesterov:
     * {@code lr_t·(β1·m + (1 − β1)·g)/(√v + ε)}). The powers are updated by other nodes of the graph.
     */
    static final class Adam implements Kernel {
        private final float[] var;
        private final float[] m;
        private final float[] v;
        private final float[] beta1Power;
        private final float[] beta2Power;
        private final float[] lr;
        private final float[] beta1;
        private final float[] beta2;
        private final float[] epsilon;
        private final float[] grad;
        private final boolean nesterov;

        Adam(NodeSpec s) {
            s.requireInputs(10);
            Value w = InPlace.parameter(s, 0, "var");
            InPlace.stateLike(s, w, 1, "m");
            InPlace.stateLike(s, w, 2, "v");
            InPlace.sameShape(s, w, 9, "grad");
            var = s.floatIn(0);
            m = s.floatIn(1);
            v = s.floatIn(2);
            beta1Power = InPlace.scalar(s, 3, "beta1_power");
            beta2Power = InPlace.scalar(s, 4, "beta2_power");
            lr = InPlace.scalar(s, 5, "lr");
            beta1 = InPlace.scalar(s, 6, "beta1");
            beta2 = InPlace.scalar(s, 7, "beta2");
            epsilon = InPlace.scalar(s, 8, "epsilon");
            grad = s.floatIn(9);
            nesterov = s.attrs.getBool("use_nesterov");
            s.aliasOptionalOut(0, w);
        }

        @Override
        public void run() {
            float b1 = beta1[0];
            float b2 = beta2[0];
            float eps = epsilon[0];
            float lrT = (float) (lr[0] * Math.sqrt(1.0 - beta2Power[0]) / (1.0 - beta1Power[0]));
            for (int i = 0; i < var.length; i++) {
                float g = grad[i];
                m[i] += (g - m[i]) * (1f - b1);
                v[i] += (g * g - v[i]) * (1f - b2);
                float denom = (float) Math.sqrt(v[i]) + eps;
                if (nesterov) {
                    var[i] -= lrT * (m[i] * b1 + (1f - b1) * g) / denom;
                } else {
                    var[i] -= lrT * m[i] / denom;
                }
            }
        }
    }

    /** Assign (ref, value), in place: {@code ref ← value} (e.g. Adam's beta powers after their Mul). */
    static final class Assign implements Kernel {
        private final InPlace.RefAndValue rv;

        Assign(NodeSpec s) {
            s.requireInputs(2);
            Value ref = InPlace.parameter(s, 0, "ref");
            Value val = s.input(1);
            s.requireShape(val, ref.shape, "value");
            rv = new InPlace.RefAndValue(s, ref, val);
            s.aliasOptionalOut(0, ref);
        }

        @Override
        public void run() {
            if (rv.rf != null) {
                System.arraycopy(rv.vf, 0, rv.rf, 0, rv.rf.length);
            } else {
                System.arraycopy(rv.vi, 0, rv.ri, 0, rv.ri.length);
            }
        }
    }

    /** AssignAdd (ref, value), in place: {@code ref ← ref + value} for float or integer tensors (e.g. global_step). */
    static final class AssignAdd implements Kernel {
        private final InPlace.RefAndValue rv;
        private final int len;
        private final boolean scalarValue;

        AssignAdd(NodeSpec s) {
            s.requireInputs(2);
            Value ref = InPlace.parameter(s, 0, "ref");
            Value val = s.input(1);
            if (val.numel != ref.numel && val.numel != 1) {
                throw s.fail("value " + val.describe() + " does not fit ref " + ref.describe());
            }
            rv = new InPlace.RefAndValue(s, ref, val);
            len = ref.numel;
            scalarValue = val.numel == 1;
            s.aliasOptionalOut(0, ref);
        }

        @Override
        public void run() {
            float[] rf = rv.rf;
            float[] vf = rv.vf;
            int[] ri = rv.ri;
            int[] vi = rv.vi;
            for (int i = 0; i < len; i++) {
                int j = scalarValue ? 0 : i;
                if (rf != null) {
                    rf[i] += vf[j];
                } else {
                    ri[i] += vi[j];
                }
            }
        }
    }
}
