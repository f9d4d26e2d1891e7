package com.mindspore.flclient;

import java.util.Map;

/** The device kind "plain": local training as r1.6 does it, no hook installed (FedAvg's step, unchanged). */
final class PlainTraining implements LocalTraining {
    static final String DEVICE = "plain";
    private static final Round NOTHING = (model, uploaded) -> Map.of();

    @Override
    public String device() {
        return DEVICE;
    }

    @Override
    public Round begin(Plan plan, LocalModel model) {
        return NOTHING;
    }
}
