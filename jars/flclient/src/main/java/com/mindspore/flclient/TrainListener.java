package com.mindspore.flclient;

/**
 * pyflclient addition: fine-grained progress for the Python bridge (and any embedding app).
 * Called on the client's own thread; keep it short. An exception thrown here is logged and
 * does not stop the client.
 */
public interface TrainListener {
    /** After each local epoch: the average loss over the real (not padded) training samples. Epochs count from 1. */
    void onEpochLoss(int iteration, int epoch, float loss);

    /** After getModel and evaluation of the new global model (not called when no EVALMODE data is set). */
    void onIterationAccuracy(int iteration, float accuracy);

    /**
     * The round's progress, for progress bars: {@code stage} is {@code "admitted"} (samples: the
     * data_size sent), {@code "trained"} (samples: the training samples of all local epochs),
     * {@code "uploaded"} (samples: data_size) or {@code "evaluated"} (samples: the evaluation
     * samples; 0 when this client does not evaluate this iteration, see {@link EvaluationPlan}).
     */
    default void onRoundProgress(int iteration, String stage, long samples) {
    }

    /**
     * After each exchange with the server that got a reply: its round ({@code "startFLJob"},
     * {@code "updateModel"}, {@code "getModel"}, a cipher round), the bytes of the request's body and of
     * the reply's body (the FlatBuffers; HTTP headers not included). Requests that got no reply are
     * not counted. The server counts the same bodies (its metrics.jsonl).
     */
    default void onTraffic(String round, long bytesUp, long bytesDown) {
    }

    /** Calls {@link #onTraffic} on {@code p}'s listener, if any; a failure is logged and ignored. */
    static void traffic(FLParameter p, java.util.logging.Logger log, String round, long bytesUp, long bytesDown) {
        TrainListener l = p.getTrainListener();
        if (l == null) {
            return;
        }
        try {
            l.onTraffic(round, bytesUp, bytesDown);
        } catch (RuntimeException e) {
            log.warning("the TrainListener failed in onTraffic (ignored): " + e);
        }
    }

    /** Calls {@link #onRoundProgress} on {@code p}'s listener, if any; a failure is logged and ignored. */
    static void tell(FLParameter p, java.util.logging.Logger log, int iteration, String stage, long samples) {
        TrainListener l = p.getTrainListener();
        if (l == null) {
            return;
        }
        try {
            l.onRoundProgress(iteration, stage, samples);
        } catch (RuntimeException e) {
            log.warning("the TrainListener failed in onRoundProgress (ignored): " + e);
        }
    }
}
