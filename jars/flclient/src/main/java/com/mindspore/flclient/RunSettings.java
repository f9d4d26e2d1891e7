package com.mindspore.flclient;

/**
 * How an engine runs its round loops, beyond each client's {@link FLParameter}: who evaluates
 * ({@link EvaluationPlan}), when devices ask ({@link CheckInGate}; null: r1.6's next_req_time
 * waits) and whether model files are forced to disk after getModel.
 */
final class RunSettings {
    /** r1.6: everyone evaluates every iteration, waits follow next_req_time, model files are fsynced. */
    static final RunSettings R16 = new RunSettings(EvaluationPlan.EVERY_CLIENT_EVERY_ITERATION, null, true);

    final EvaluationPlan evaluation;
    final CheckInGate gate;
    final boolean durableModelFiles;

    RunSettings(EvaluationPlan evaluation, CheckInGate gate, boolean durableModelFiles) {
        this.evaluation = evaluation;
        this.gate = gate;
        this.durableModelFiles = durableModelFiles;
    }
}
