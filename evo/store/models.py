"""The schema as SQLAlchemy Core tables. Alembic migrations create it; this module only describes it."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Double,
    ForeignKey,
    ForeignKeyConstraint,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    UniqueConstraint,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

runs = Table(
    "runs",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("config", JSON, nullable=False),
    Column("config_hash", String(64), nullable=False),
    Column("family", String(100), nullable=False),
    Column("data_fingerprint", String(64), nullable=False),
    Column("evaluation_key", String(64), nullable=False),
    Column("seed", BigInteger, nullable=False),
    Column("status", String(20), nullable=False),
    Column("generations_target", Integer, nullable=False),
    Column("report_path", String(1000)),  # the last HTML report `evo report` wrote
    Column("lease_owner", String(200)),
    Column("lease_expires", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

generations = Table(
    "generations",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("run_id", Integer, ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("number", Integer, nullable=False),
    Column("checkpoint", JSON, nullable=False),
    Column("stats", JSON, nullable=False),
    Column("evaluation_key", String(64), nullable=False),  # data + settings its members were evaluated under
    Column("flow_run_id", String(64)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("run_id", "number", name="uq_generations_run_number"),
)

individuals = Table(
    "individuals",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("family", String(100), nullable=False),
    Column("genome_hash", String(64), nullable=False),
    Column("genes", JSON, nullable=False),
    UniqueConstraint("family", "genome_hash", name="uq_individuals_family_hash"),
)

evaluation_keys = Table(
    "evaluation_keys",
    metadata,
    Column("id", Integer, primary_key=True),
    # hash of what an evaluation depends on besides the genome (evo.run.context.evaluation_key)
    Column("key", String(64), nullable=False, unique=True),
)

metric_sets = Table(
    "metric_sets",
    metadata,
    Column("id", Integer, primary_key=True),
    # the metric names of an evaluation's blobs, in blob order, as a JSON list (written once per set)
    Column("names", String(4000), nullable=False, unique=True),
)

evaluations = Table(
    "evaluations",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("individual_id", Integer, ForeignKey("individuals.id"), nullable=False),
    Column("key_id", Integer, ForeignKey("evaluation_keys.id"), nullable=False),
    Column("metric_set_id", Integer, ForeignKey("metric_sets.id"), nullable=False),
    # float64 little-endian, one value per name of the metric set: exact for NaN and infinities
    Column("metrics", LargeBinary, nullable=False),
    # the same per symbol, symbol after symbol (NULL: a one-symbol market)
    Column("per_asset", LargeBinary),
    Column("created_at", DateTime(timezone=True), nullable=False),
    # the trade fingerprint: equal for evaluations whose orders are equal (NULL: stored before it existed)
    Column("trades", BigInteger),
    # the behaviour's block sums of returns on the key's window, for CSCV (evo.store.blocks), on one
    # evaluation of each behaviour (NULL on the others, and where none were computed)
    Column("blocks", LargeBinary),
    UniqueConstraint("individual_id", "key_id", name="uq_evaluations_individual_key"),
)

members = Table(
    "members",
    metadata,
    Column("run_id", Integer, primary_key=True),
    Column("generation", Integer, primary_key=True),
    Column("individual_id", Integer, ForeignKey("individuals.id"), primary_key=True),
    Column("role", String(10), primary_key=True),  # 'offspring' or 'survivor'
    Column("rank", Integer),
    Column("crowding", Double),
    Column("objectives", JSON, nullable=False),
    ForeignKeyConstraint(
        ["run_id", "generation"],
        ["generations.run_id", "generations.number"],
        name="fk_members_generation",
        ondelete="CASCADE",
    ),
)

validations = Table(
    "validations",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("run_id", Integer, ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("kind", String(20), nullable=False),  # 'holdout' or 'walk_forward'
    Column("generation", Integer, nullable=False),  # the generation whose Pareto set was judged
    Column("result", JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("run_id", "kind", "generation", name="uq_validations_run_kind_generation"),
)

paper_books = Table(
    "paper_books",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("run_id", Integer, ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("members", JSON, nullable=False),  # genome hashes
    Column("data", JSON, nullable=False),  # the market files
    Column("start", String(40), nullable=False),  # ISO timestamp: the book trades from the first bar at or after it
    Column("last_bar", String(40)),  # ISO timestamp of the last bar in the ledger (NULL: none yet)
    Column("history", String(64)),  # sha256 of the market's bars up to last_bar: a restated history differs
    Column("alarms", JSON),  # genome hashes whose current drift has been announced (NULL: none)
    Column("created_at", DateTime(timezone=True), nullable=False),
)

paper_ledger = Table(
    "paper_ledger",
    metadata,
    Column("book_id", Integer, ForeignKey("paper_books.id", ondelete="CASCADE"), primary_key=True),
    Column("member", String(64), primary_key=True),  # genome hash
    Column("symbol", String(200), primary_key=True),
    Column("bar", String(40), primary_key=True),  # ISO timestamp
    Column("fill", Double, nullable=False),  # signed units traded on the bar
    Column("price", Double),  # the fill's price (NULL: no fill)
    Column("position", Double, nullable=False),  # signed units held after the bar
    Column("cash", Double, nullable=False),  # the column's cash (the group's with shared cash)
    Column("equity", Double, nullable=False),  # its value: cash + position at the close
)
