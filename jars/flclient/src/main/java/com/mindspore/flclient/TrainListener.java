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
}
