//! What a server line means: its kind, its code, a decoded referral, and the known NO texts. Pure: no I/O.
