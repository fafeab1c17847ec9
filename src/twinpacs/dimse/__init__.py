"""The DIMSE door: C-ECHO, C-STORE, C-FIND, C-GET, C-MOVE and Storage Commitment over pynetdicom."""

from .server import DimseServer, start_dimse

__all__ = ["DimseServer", "start_dimse"]
