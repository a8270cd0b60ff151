"""Surveillance counts kept at write time, and each version's sealed contribution to them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from registry.db import Base, UTCDateTime


class SurveillanceCount(Base):
    """One microcell: a month, origin, destination, purpose, sex and age band, nine counts.

    Counts only; no row names an examination or a person. Written in the same transaction as
    the examination that moves it, so the table always adds up to the stored examinations.
    """

    __tablename__ = "surveillance_counts"

    month: Mapped[str] = mapped_column(String(7), primary_key=True)  # 2026-03
    origin: Mapped[str] = mapped_column(String(2), primary_key=True)
    destination: Mapped[str] = mapped_column(String(4), primary_key=True)  # ISO alpha-2 or none
    purpose: Mapped[str] = mapped_column(String(20), primary_key=True)
    sex: Mapped[str] = mapped_column(String(8), primary_key=True)
    age_band: Mapped[str] = mapped_column(String(8), primary_key=True)
    examined: Mapped[int] = mapped_column(Integer, default=0)
    cxr_suggestive_tb: Mapped[int] = mapped_column(Integer, default=0)
    tb_bact_confirmed: Mapped[int] = mapped_column(Integer, default=0)
    tb_rif_resistant: Mapped[int] = mapped_column(Integer, default=0)
    hiv_reactive_screening: Mapped[int] = mapped_column(Integer, default=0)
    hiv_confirmed: Mapped[int] = mapped_column(Integer, default=0)
    syphilis_reactive: Mapped[int] = mapped_column(Integer, default=0)
    referrals_made: Mapped[int] = mapped_column(Integer, default=0)
    referrals_completed: Mapped[int] = mapped_column(Integer, default=0)


class SurveillanceTally(Base):
    """What one examination version added to the counts, sealed: amendments take it back."""

    __tablename__ = "surveillance_tallies"

    version_id: Mapped[int] = mapped_column(ForeignKey("examination_versions.id"), primary_key=True)
    sealed: Mapped[bytes] = mapped_column(LargeBinary)


class SurveillanceProtection(Base):
    """A year's suppression pattern, computed once per data version and threshold.

    Protecting a year takes seconds; every worker and every later extract of the same counts
    reads the pattern instead. `status` holds one byte per cell and measure (zlib-compressed).
    """

    __tablename__ = "surveillance_protections"

    data_version: Mapped[str] = mapped_column(String(64), primary_key=True)  # year:months:digest
    k: Mapped[int] = mapped_column(Integer, primary_key=True)
    cells: Mapped[int] = mapped_column(Integer)  # cells per measure, to check on reading
    status: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class SurveillanceLayer(Base):
    """One layer of a year's release ledger: the counts a release added to what went before.

    The first release of a year makes layer 0 (the counts of its data version); a release of a
    later version adds the records counted since (late records, months closed since). Layers
    are never changed: every later release of the year is built on them (ledger.py).
    """

    __tablename__ = "surveillance_layers"

    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    data_version: Mapped[str] = mapped_column(String(64))  # the version the release was cut from
    closed_months: Mapped[int] = mapped_column(Integer)
    cells: Mapped[bytes] = mapped_column(LargeBinary)  # the added microcells, JSON, zlib
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
