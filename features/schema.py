"""The data contract's schema: which CRM tables exist, their columns, and what each one means.

The validation rules that check a source against it are in ``features.contract``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["id", "timestamp", "date", "number", "bool", "string"]

SURVEY_SCALES: dict[str, tuple[float, float]] = {"nps": (0, 10), "csat": (1, 5), "ces": (1, 7)}


@dataclass(frozen=True)
class Column:
    """A column; ``required`` ones must be present, ``nullable=False`` ones have no gaps."""

    name: str
    kind: Kind
    required: bool = False
    nullable: bool = True
    nonnegative: bool = False
    meaning: str = ""


@dataclass(frozen=True)
class Table:
    """A table: ``required`` tables must be present; columns not listed pass unchecked."""

    name: str
    required: bool
    columns: tuple[Column, ...]
    event_time: str | None = None  # the column checked against signup_date
    meaning: str = ""

    def column(self, name: str) -> Column | None:
        return next((c for c in self.columns if c.name == name), None)


_CID = Column("customer_id", "id", required=True, nullable=False, meaning="the customer's id")

TABLES: dict[str, Table] = {
    t.name: t
    for t in (
        Table(
            "customers", True,
            (
                _CID,
                Column("signup_date", "date", True, False, meaning="first day as a customer"),
                Column("cancel_date", "date", meaning="contract end (contractual churn); empty if none"),
                Column("has_contract", "bool", meaning="on a contract (population of contractual churn)"),
            ),
            meaning="one row per customer; any other column is a static attribute (plan, segment, ...)",
        ),
        Table(
            "orders", True,
            (
                _CID,
                Column("order_ts", "timestamp", True, False, meaning="when the order was placed"),
                Column("amount", "number", True, False, True, "order value in currency units"),
                Column("order_id", "string", meaning="unique order id"),
                Column("quantity", "number", nonnegative=True, meaning="items in the order"),
                Column("discount", "number", nonnegative=True, meaning="discount granted, currency units"),
                Column("channel", "string", meaning="web, store, app, ..."),
            ),
            event_time="order_ts",
            meaning="one row per order",
        ),
        Table(
            "tickets", False,
            (
                _CID,
                Column("opened_ts", "timestamp", True, False, meaning="when the ticket was opened"),
                Column("closed_ts", "timestamp", meaning="when it was closed; empty while open"),
                Column("channel", "string", meaning="phone, email, chat, ..."),
                Column("category", "string", meaning="billing, delivery, product, ..."),
                Column("is_complaint", "bool", meaning="the customer complained"),
                Column("escalated", "bool", meaning="escalated to a second line"),
                Column("reopened", "bool", meaning="reopened after a first closing"),
                Column("resolved_first_contact", "bool", meaning="solved at the first contact"),
            ),
            event_time="opened_ts",
            meaning="one row per support ticket",
        ),
        Table(
            "surveys", False,
            (
                _CID,
                Column("response_ts", "timestamp", True, True, meaning="when answered; empty if not"),
                Column("kind", "string", True, False, meaning="nps (0-10), csat (1-5), ces (1-7, 7 = hardest)"),
                Column("score", "number", True, True, meaning="the answer on the kind's scale"),
                Column("sent_ts", "timestamp", meaning="when the survey was sent (measures non-response)"),
                Column("comment", "string", meaning="free text"),
            ),
            event_time="response_ts",
            meaning="one row per survey sent or answered",
        ),
        Table(
            "engagement", False,
            (
                _CID,
                Column("event_ts", "timestamp", True, False, meaning="when it happened"),
                Column("event_type", "string", True, False,
                       meaning="email_sent, email_open, email_click, web_session, app_login, review, "
                               "loyalty_earn, loyalty_redeem, referral, ..."),
                Column("value", "number", meaning="pages (web_session), rating (review), points (loyalty)"),
            ),
            event_time="event_ts",
            meaning="one row per engagement event",
        ),
        Table(
            "offers", False,
            (
                _CID,
                Column("sent_ts", "timestamp", True, False, meaning="when the offer was (or would be) sent"),
                Column("offer_id", "string", True, False, meaning="catalogue id of the offer"),
                Column("treated", "bool", True, False, meaning="false = randomised hold-out, not sent"),
                Column("accepted_ts", "timestamp", meaning="when the customer took it up"),
                Column("cost", "number", nonnegative=True, meaning="what the offer cost"),
                Column("propensity", "number", nonnegative=True,
                       meaning="probability of what this row got (the offer if treated, nothing "
                               "if held out) under the campaign's randomisation; judges a policy "
                               "off-policy (estimated per campaign when absent)"),
                Column("arm", "string", meaning="policy (sent by the policy, a share held out) or "
                                                "test (a 50/50 test slice of an unproven offer)"),
                Column("campaign_id", "string", meaning="the campaign the row belongs to"),
                Column("assignment_seed", "number",
                       meaning="the seed of the campaign's random assignment (audit)"),
                Column("predicted_churn_cut", "number",
                       meaning="the cut in churn probability the plan predicted"),
            ),
            event_time="sent_ts",
            meaning="one row per customer selected in a retention campaign",
        ),
    )
}

REQUIRED_TABLES = tuple(name for name, t in TABLES.items() if t.required)
