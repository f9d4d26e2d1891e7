package com.mindspore.flclient.model;

import com.mindspore.flclient.cases.CaseAdapter;

/** Registers r1.6's case API ({@link Client}) with the framework: its cases run through {@link R16Case}. */
public final class R16CaseAdapter implements CaseAdapter {
    @Override
    public Class<?> caseBase() {
        return Client.class;
    }

    @Override
    public com.mindspore.flclient.cases.Client adapt(Object instance) {
        return new R16Case((Client) instance);
    }
}
