"""Towns (镇/街), villages (村/社区) and organizing departments."""

from __future__ import annotations

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db


class Town(db.Model):
    __tablename__ = "towns"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)

    villages: Mapped[list[Village]] = relationship(
        back_populates="town", order_by="Village.name", cascade="all, delete-orphan"
    )
    aliases: Mapped[list[TownAlias]] = relationship(
        back_populates="town", order_by="TownAlias.alias", cascade="all, delete-orphan"
    )

    def __repr__(self) -> str:
        return f"<Town {self.code} {self.name}>"


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

    town: Mapped[Town] = relationship(back_populates="villages")


class Department(db.Model):
    """An organizing department. Names change with reforms, so this is data."""

    __tablename__ = "departments"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    former_names: Mapped[str] = mapped_column(String(200), default="")
