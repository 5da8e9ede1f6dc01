"""The course's iris network, Keras-style: 4 -> 32 -> 16 -> 3, ReLU, softmax, cross-entropy, SGD.

    pip install ".[examples]" && python examples/iris_keras.py
"""

import dlfast
from dlfast.datasets import load_iris_split
from dlfast.layers import Dense, Input

dlfast.manual_seed(0)
x_train, y_train, x_test, y_test = load_iris_split(test_size=0.3)  # stratified, standardised

model = dlfast.Sequential([
    Input((4,)),
    Dense(32, activation="relu"),
    Dense(16, activation="relu"),
    Dense(3, activation="softmax"),
])
model.summary()
model.compile(optimizer=dlfast.optimizers.SGD(learning_rate=0.05, momentum=0.9),
              loss="sparse_categorical_crossentropy", metrics=["accuracy"])
history = model.fit(x_train, y_train, batch_size=16, epochs=100, validation_split=0.1, verbose=2)
loss, accuracy = model.evaluate(x_test, y_test)
print(f"test loss {loss:.4f}, test accuracy {accuracy:.1%}")

# "Run predict and look at the errors": which test flowers are misclassified?
predicted = model.predict(x_test).argmax(axis=1)
for i in (predicted != y_test).nonzero()[0]:
    print(f"test sample {i}: true class {y_test[i]}, predicted {predicted[i]}")
