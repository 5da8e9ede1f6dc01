"""The classes a model file may name, by class name: dlfast's layer classes (registered by
``dlfast.layers``) and its model classes (by ``dlfast.models`` and ``dlfast.functional``).
``dlfast.saving`` reads them here. A leaf module, it imports nothing of dlfast, so saving needs
no import of the modules that use it (models and functional import saving)."""

_classes = {}  # class name (or alias, e.g. "Model") -> class
_model_bases = []  # classes whose from_config takes custom_objects (dlfast.Model)


def register(cls, name=None):
    """Make ``cls`` loadable under ``name`` (its class name by default). Returns ``cls``."""
    _classes[name or cls.__name__] = cls
    return cls


def register_model_base(cls):
    """Subclasses of ``cls`` rebuild with ``from_config(config, custom_objects)``."""
    _model_bases.append(cls)
    return cls


def classes():
    """{name: class} of every registered class (a copy)."""
    return dict(_classes)


def is_model_class(cls):
    return any(issubclass(cls, base) for base in _model_bases)
