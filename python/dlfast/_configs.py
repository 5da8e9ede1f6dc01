"""Configs of the objects a model file holds, as JSON-ready dicts: ``serialize`` /
``deserialize`` for layers and models (classes found in dlfast.registry or the user's
``custom_objects``, rebuilt with ``cls.from_config``; nothing from the file is ever run), and
the training config (loss, metrics, optimizer and its learning-rate schedule) of a compiled
model. Used by dlfast.saving, which re-exports serialize and deserialize."""

from . import losses as losses_module, metrics as metrics_module
from . import optimizers as optimizers_module, registry


def serialize(obj):
    """{"class_name", "config"} for a layer, model, loss, metric or optimizer."""
    return {"class_name": type(obj).__name__, "config": obj.get_config()}


def deserialize(entry, custom_objects=None):
    """The layer (or model) that ``serialize`` described: its class from dlfast's layers and
    models, or from custom_objects (which win), rebuilt with ``cls.from_config(config)``."""
    cls, config = _lookup(entry, registry.classes(), custom_objects, "layer")
    for key, value in config.items():  # a user's initializer, saved by its name
        if key.endswith("_initializer") and isinstance(value, str) and value in (
                custom_objects or {}):
            config[key] = custom_objects[value]
    try:
        if registry.is_model_class(cls):
            return cls.from_config(config, custom_objects)
        return cls.from_config(config)
    except (TypeError, ValueError) as e:
        raise ValueError(f"cannot rebuild layer {entry['class_name']} "
                         f"'{config.get('name')}': {e}") from e


def _classes_in(module, base, keep_base=False):
    """{name: class} of the subclasses of `base` that `module` exports."""
    return {name: obj for name, obj in vars(module).items()
            if isinstance(obj, type) and issubclass(obj, base) and (keep_base or obj is not base)}


def _lookup(entry, classes, custom_objects, what):
    """(class, config copy) for a {"class_name", "config"} entry."""
    if (not isinstance(entry, dict) or not isinstance(entry.get("class_name"), str)
            or not isinstance(entry.get("config"), dict)):
        raise ValueError(f"a {what} entry must be {{'class_name': str, 'config': dict}}, got "
                         f"{entry!r}")
    name = entry["class_name"]
    cls = (custom_objects or {}).get(name) or classes.get(name)
    if not isinstance(cls, type):
        raise ValueError(f"unknown {what} class '{name}': not one of dlfast's "
                         f"({', '.join(sorted(classes))}); pass your own class in "
                         f"custom_objects={{'{name}': {name}}}")
    return cls, dict(entry["config"])


def _instantiate(entry, classes, custom_objects, what):
    cls, config = _lookup(entry, classes, custom_objects, what)
    try:
        return cls(**config)
    except (TypeError, ValueError) as e:
        raise ValueError(f"cannot rebuild {what} {entry['class_name']}: {e}") from e


def _training_config(model):
    """loss, metrics and optimizer of a compiled model (None when not compiled)."""
    if model.optimizer is None or model.loss is None:
        return None
    opt = model.optimizer
    opt = opt.saved_optimizer() if hasattr(type(opt), "saved_optimizer") else opt  # a wrapper's
    optimizer = serialize(opt)
    lr = opt.learning_rate
    if callable(lr):
        if not hasattr(lr, "get_config"):
            raise ValueError(f"cannot save the optimizer: its learning_rate {lr!r} is a "
                             f"callable without get_config (use a schedule from "
                             f"dlfast.optimizers.schedules)")
        optimizer["config"]["learning_rate"] = serialize(lr)
    loss = serialize(model.loss)
    loss["config"].pop("name", None)  # the loss classes take from_logits only
    return {"loss": loss, "metrics": [serialize(m) for m in model.metrics],
            "optimizer": optimizer}


def _compile_from(model, training, custom_objects):
    optimizer = dict(training["optimizer"])
    lr = optimizer.get("config", {}).get("learning_rate")
    if isinstance(lr, dict):  # a schedule
        schedules = getattr(optimizers_module, "schedules", None)
        classes = {} if schedules is None else _classes_in(schedules, object)
        optimizer["config"] = {**optimizer["config"],
                               "learning_rate": _instantiate(lr, classes, custom_objects,
                                                             "learning-rate schedule")}
    model.compile(
        optimizer=_instantiate(optimizer, _classes_in(optimizers_module,
                                                      optimizers_module.Optimizer),
                               custom_objects, "optimizer"),
        loss=_instantiate(training["loss"], _classes_in(losses_module, losses_module.Loss),
                          custom_objects, "loss"),
        metrics=[_instantiate(m, _classes_in(metrics_module, metrics_module.Accuracy, True),
                              custom_objects, "metric") for m in training["metrics"]])
