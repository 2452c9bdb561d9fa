"""Train the placement classifier through the library API (no CLI), in under 40 lines."""
import numpy as np

import tinygrad_bn as tg
from tinygrad_bn import Tensor, nn, optim
from tinygrad_bn.data import Standardizer, batches, bundled_placement_path, load_csv
from tinygrad_bn.data import train_test_split

data = load_csv(bundled_placement_path(), features=("cgpa", "iq"), target="placed")
rng = np.random.default_rng(0)
X_train, X_test, y_train, y_test = train_test_split(data.X, data.y, 0.2, rng)
scaler = Standardizer.fit(X_train)             # statistics from the training split only
X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)

tg.manual_seed(0)
model = nn.Sequential(nn.Linear(2, 16), nn.BatchNorm1d(16), nn.ReLU(),   # BN after Linear,
                      nn.Linear(16, 16), nn.BatchNorm1d(16), nn.ReLU(),  # before the ReLU
                      nn.Linear(16, 1))
optimizer = optim.SGD(model.parameters(), lr=0.1)
loss_fn = nn.BCEWithLogitsLoss()

for epoch in range(30):
    model.train()                               # BN normalises with batch statistics
    for X_batch, y_batch in batches(X_train, y_train, 32, rng):
        loss = loss_fn(model(Tensor(X_batch)), y_batch.reshape(-1, 1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()                        # p ← p − η·∂L/∂p, γ and β included

model.eval()                                    # BN uses its running mean and variance
with tg.no_grad():
    predicted = model(Tensor(X_test)).data.reshape(-1) > 0
accuracy = np.mean(predicted == (y_test == 1))
print(f"test accuracy {accuracy:.3f} (majority class {max(y_test.mean(), 1 - y_test.mean()):.3f})")
print("γ of the first BatchNorm:", np.round(model[1].gamma.data, 2))
