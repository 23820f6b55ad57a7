"""Towns (镇/街), villages (村/社区) and organizing departments."""

from __future__ import annotations

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db


class Town(db.Model):
    __tablename__ = "towns"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    # Where the town stands in every list of towns (coverage, filters, exports): smaller
    # first, then by code. See ``TOWN_ORDER``.
    position: Mapped[int] = mapped_column(default=0, server_default="0")
    # Names the town had before renames, joined with "、" (placenames.FORMER_NAME_SEPARATOR):
    # old rosters still name it so.
    former_names: Mapped[str] = mapped_column(Text, default="", server_default="")

    villages: Mapped[list[Village]] = relationship(
        back_populates="town", order_by="Village.name", cascade="all, delete-orphan"
    )
    aliases: Mapped[list[TownAlias]] = relationship(
        back_populates="town", order_by="TownAlias.alias", cascade="all, delete-orphan"
    )

    def __repr__(self) -> str:
        return f"<Town {self.code} {self.name}>"

    @property
    def sort_key(self) -> tuple[int, str]:
        """The Python twin of ``TOWN_ORDER``."""
        return (self.position, self.code)


# The one order of towns wherever they are listed: ``select(Town).order_by(*TOWN_ORDER)``.
TOWN_ORDER = (Town.position, Town.code)


class TownAlias(db.Model):  # type: ignore[name-defined]  # as the other models (baseline)
    """Another way rosters write a town (城关 for 城关镇), set by admins.

    Stored as compared (``placenames.normalize_place``); one alias names one town.
    """

    __tablename__ = "town_aliases"

    id: Mapped[int] = mapped_column(primary_key=True)
    town_id: Mapped[int] = mapped_column(ForeignKey("towns.id", ondelete="CASCADE"), index=True)
    alias: Mapped[str] = mapped_column(String(64), unique=True)

    town: Mapped[Town] = relationship(back_populates="aliases")


class Village(db.Model):
    __tablename__ = "villages"
    __table_args__ = (UniqueConstraint("town_id", "name", name="uq_villages_town_name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    town_id: Mapped[int] = mapped_column(ForeignKey("towns.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    former_names: Mapped[str] = mapped_column(Text, default="", server_default="")

    town: Mapped[Town] = relationship(back_populates="villages")


class Department(db.Model):
    """An organizing department. Names change with reforms, so this is data."""

    __tablename__ = "departments"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    former_names: Mapped[str] = mapped_column(String(200), default="")
