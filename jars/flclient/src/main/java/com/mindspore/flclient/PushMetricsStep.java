package com.mindspore.flclient;

import com.google.flatbuffers.FlatBufferBuilder;

import java.nio.ByteBuffer;
import java.util.concurrent.CompletableFuture;
import java.util.logging.Logger;

import mindspore.schema.RequestPushMetrics;
import mindspore.schema.ResponsePushMetrics;
import mindspore.schema.ResponseCode;

/**
 * After an evaluation: r1.6's {@code /pushMetrics} ({@code RequestPushMetrics {loss, accuracy}}) with
 * this device's numbers, so that the server can show how the model does on the devices. r1.6's
 * device never sent it (r1.6 served it to its hybrid-training worker); a server that does not
 * serve it changes nothing: one attempt, its outcome logged, the round goes on either way.
 * The loss is the average training loss of this iteration's last local epoch (what the job's
 * {@link TrainListener#onEpochLoss} was told last, captured by {@link #recording}); the accuracy
 * is the evaluation's.
 */
final class PushMetricsStep {
    static final String ROUND = "pushMetrics";

    private final FLParameter p;
    private final Logger log;
    private final FLCommunication comm;
    private volatile float lastLoss = Float.NaN;
    private boolean toldRefused;

    PushMetricsStep(FLParameter p, Logger log, FLCommunication comm) {
        this.p = p;
        this.log = log;
        this.comm = comm;
    }

    /** {@code user} (may be null) with the last epoch loss kept for the push. */
    TrainListener recording(TrainListener user) {
        return new TrainListener() {
            @Override
            public void onEpochLoss(int iteration, int epoch, float loss) {
                lastLoss = loss;
                if (user != null) {
                    user.onEpochLoss(iteration, epoch, loss);
                }
            }

            @Override
            public void onIterationAccuracy(int iteration, float accuracy) {
                if (user != null) {
                    user.onIterationAccuracy(iteration, accuracy);
                }
            }

            @Override
            public void onRoundProgress(int iteration, String stage, long samples) {
                if (user != null) {
                    user.onRoundProgress(iteration, stage, samples);
                }
            }

            @Override
            public void onTraffic(String round, long bytesUp, long bytesDown) {
                if (user != null) {
                    user.onTraffic(round, bytesUp, bytesDown);
                }
            }
        };
    }

    /** Push {@code accuracy} (NaN: not evaluated, nothing is sent) and the last loss, then {@code then}. */
    Next push(float accuracy, Next.Step then) {
        if (Float.isNaN(accuracy)) {
            return then.run();
        }
        float loss = Float.isNaN(lastLoss) ? 0.0f : lastLoss;
        byte[] request = body(loss, accuracy);
        CompletableFuture<FLCommunication.Reply> sent = comm.send(ROUND, request);
        return Next.await(sent, () -> {
            try {
                FLCommunication.Reply reply = comm.reply(ROUND, sent);
                TrainListener.traffic(p, log, ROUND, request.length, reply.body.length); // every byte accounted for
                int retcode = reply.httpStatus == 200 && reply.body.length >= 8
                        ? ResponsePushMetrics.getRootAsResponsePushMetrics(ByteBuffer.wrap(reply.body)).retcode()
                        : -reply.httpStatus;
                if (retcode == ResponseCode.SUCCEED) {
                    log.info("[pushMetrics] loss " + loss + ", accuracy " + accuracy + " pushed");
                } else if (!toldRefused) {
                    toldRefused = true; // once per job: a server without the endpoint refuses them all
                    log.info("[pushMetrics] not taken by the server (" + (retcode < 0 ? "HTTP " + -retcode
                            : "retcode " + retcode) + "); the round goes on");
                }
            } catch (java.io.IOException | StopSignal.StoppedException | RuntimeException e) {
                log.info("[pushMetrics] not sent (" + e + "); the round goes on");
            }
            return then.run();
        });
    }

    static byte[] body(float loss, float accuracy) {
        FlatBufferBuilder b = new FlatBufferBuilder(32);
        b.finish(RequestPushMetrics.createRequestPushMetrics(b, loss, accuracy));
        return b.sizedByteArray();
    }
}
