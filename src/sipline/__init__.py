"""sipline: a self-hosted SIP connector that speaks Bitrix24's voximplant.sip.* REST API."""

__version__ = "0.1.0"
