"""One error vocabulary. Each error knows its HTTP status and its DIMSE status;
only the protocol doors (dimse/, web/) map them onto the wire."""

from __future__ import annotations


class TwinpacsError(Exception):
    """Base of every error twinpacs raises on purpose."""

    http_status = 500
    dimse_status = 0xC000  # Failure: unable to process

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(TwinpacsError):
    """The client sent something that cannot be used as it is."""

    http_status = 400
    dimse_status = 0xC000


class NotDicom(InvalidInput):
    """Bytes that are not a DICOM object, or a truncated one."""

    dimse_status = 0xC000  # Cannot understand (PS3.4 C.4.2.1.4 0xCxxx)


class MissingAttribute(InvalidInput):
    """A required attribute (e.g. SOP Instance UID) is absent or empty."""

    dimse_status = 0xA900  # Data set does not match SOP class


class InvalidUID(InvalidInput):
    """A UID that is not a valid DICOM UID (PS3.5 9.1)."""

    dimse_status = 0xA900


class InvalidValue(InvalidInput):
    """An attribute value no DICOM text may hold (an embedded NUL, a length past any VR's)."""

    dimse_status = 0xA900  # Data set does not match SOP class


class UnknownQueryLevel(InvalidInput):
    """QueryRetrieveLevel missing or not one the information model allows."""

    dimse_status = 0xA900  # Identifier does not match SOP class


class InvalidQuery(InvalidInput):
    """A query key whose value cannot be matched (e.g. a malformed date range)."""

    dimse_status = 0xA900


class NotFound(TwinpacsError):
    http_status = 404
    dimse_status = 0xA801


class UnknownMoveDestination(TwinpacsError):
    """C-MOVE to an AE title this site has no address for (PS3.4 C.4.2.1.4: 0xA801)."""

    http_status = 400
    dimse_status = 0xA801


class ConfigurationError(TwinpacsError):
    """A setting is missing or wrong; the site refuses to start."""

    http_status = 500


class SiteNotActive(TwinpacsError):
    """A clinical store sent to a standby site; the message names the active site."""

    http_status = 503
    dimse_status = 0xA700  # Refused: out of resources (temporary; the sender may retry elsewhere)
