package com.mindspore.flclient.runtime.graph;

/**
 * One node of the graph bound to its tensors' storage: {@link #run()} computes the node's outputs
 * from its inputs without allocating. Built once per session by the op's constructor, which
 * validates attributes and shapes and allocates outputs and scratch buffers.
 */
public interface Kernel {
    void run();
}
