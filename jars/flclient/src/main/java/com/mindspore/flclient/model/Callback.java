package com.mindspore.flclient.model;

import com.mindspore.lite.LiteSession;
import com.mindspore.lite.MSTensor;

import java.util.Optional;
import java.util.logging.Logger;

/**
 * A callback of an r1.6-style {@link Client} loop (MindSpore r1.6's API): called around every
 * step ({@code runGraph}) and every epoch; reads the session's outputs.
 */
public abstract class Callback {
    protected LiteSession session;

    /** Steps seen in the current epoch. */
    public int steps = 0;

    /** Epochs finished, counted from 0. */
    int epochs = 0;

    private Logger logger = Logger.getLogger("FLClient");

    public Callback(LiteSession session) {
        this.session = session;
    }

    /** The first output tensor with {@code size} elements (the loss: 1, the logits: batch * classes). */
    protected Optional<MSTensor> searchOutputsForSize(int size) {
        if (session == null) {
            logger.severe("trainSession cannot be null");
            return Optional.empty();
        }
        for (MSTensor tensor : session.getOutputMapByTensor().values()) {
            if (tensor.elementsNum() == size) {
                return Optional.of(tensor);
            }
        }
        logger.severe("can not find output the tensor, element num is " + size);
        return Optional.empty();
    }

    /** pyflclient addition: the client's log (its client.log when the framework runs it). */
    protected Logger logger() {
        return logger;
    }

    void bindLogger(Logger l) {
        this.logger = l;
    }

    /** Before each step; nothing by default (abstract in r1.6: an r1.6 override compiles as it is). */
    public Status stepBegin() {
        return Status.SUCCESS;
    }

    public abstract Status stepEnd();

    /** Before each epoch; nothing by default (abstract in r1.6: an r1.6 override compiles as it is). */
    public Status epochBegin() {
        return Status.SUCCESS;
    }

    public abstract Status epochEnd();
}
