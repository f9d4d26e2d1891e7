import os
os.environ.setdefault("ONEDNN_MAX_CPU_ISA","AVX2")
import numpy as np, mindspore as ms
from mindspore import nn, Tensor
from mindspore.common.initializer import HeUniform
ms.set_context(mode=ms.GRAPH_MODE, device_target="CPU")
class LeNet5(nn.Cell):
    def __init__(self, num_class=62):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 5, pad_mode="valid")
        self.conv2 = nn.Conv2d(6, 16, 5, pad_mode="valid")
        self.fc1 = nn.Dense(16*5*5, 120); self.fc2 = nn.Dense(120, 84); self.fc3 = nn.Dense(84, num_class)
        self.relu = nn.ReLU(); self.max_pool2d = nn.MaxPool2d(kernel_size=2, stride=2); self.flatten = nn.Flatten()
    def construct(self, x):
        x = self.max_pool2d(self.relu(self.conv1(x)))
        x = self.max_pool2d(self.relu(self.conv2(x)))
        x = self.flatten(x)
        x = self.relu(self.fc1(x)); x = self.relu(self.fc2(x)); return self.fc3(x)
net = LeNet5()
loss = nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")
opt = nn.Momentum(net.trainable_params(), learning_rate=0.01, momentum=0.9)
train = nn.TrainOneStepCell(nn.WithLossCell(net, loss), opt)
train.set_train()
x = Tensor(np.zeros((32,3,32,32), np.float32)); y = Tensor(np.zeros((32,), np.int32))
ms.export(train, x, y, file_name="lenet_train", file_format="MINDIR")
from mindspore.train import mind_ir_pb2
m = mind_ir_pb2.ModelProto(); m.ParseFromString(open("lenet_train.mindir","rb").read())
g = m.graph
print("inputs", [(i.name, [d for d in i.tensor[0].dims] if i.tensor else None) for i in g.input])
print("params", [(p.name, list(p.dims)) for p in g.parameter])
print("outputs", [o.name for o in g.output])
for n in g.node:
    attrs = {a.name: (a.i if a.type==a.INT else a.f if a.type==a.FLOAT else a.s[:30] if a.type==a.STRING else a.type) for a in n.attribute}
    print(n.op_type, n.name, list(n.input), list(n.output), attrs)
print("functions", len(m.functions))
