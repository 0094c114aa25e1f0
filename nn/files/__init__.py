"""Files: atomic writes, the checked zip archive, model files."""

from nn.files.archive import ModelFileError
from nn.files.atomic import remove_stale_temporaries, write_atomically
from nn.files.model_file import FORMAT, VERSION, load, load_with_state, save

__all__ = [
    "FORMAT",
    "VERSION",
    "ModelFileError",
    "load",
    "load_with_state",
    "remove_stale_temporaries",
    "save",
    "write_atomically",
]
