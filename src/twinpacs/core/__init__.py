"""The domain core: imports only the standard library, pydicom and twinpacs.ports/errors."""
