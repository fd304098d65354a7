"""One vocabulary of column names, used by every table that goes into or comes out of recexp."""

from __future__ import annotations

__all__ = ["Columns"]


class Columns:
    """Column names shared by loaders, :class:`~recexp.dataset.Dataset`, models and metrics.

    Loaders rename their sources onto these names; nothing downstream knows a source's
    own spelling (``userId``, ``CustomerID``, ...).
    """

    User = "user_id"
    """External user id, as the source wrote it (int or str)."""
    Item = "item_id"
    """External item id, as the source wrote it (int or str)."""
    Rating = "rating"
    """Explicit rating (float32), when the source has one."""
    Weight = "weight"
    """Interaction strength used to train (float32); 1.0 for plain implicit feedback."""
    Datetime = "timestamp"
    """When the interaction happened: ``datetime64[s]``."""
    Label = "label"
    """Click label for impression logs: 1 clicked, 0 shown but not clicked."""
    Score = "score"
    """A model's score for a (user, item) pair."""
    Rank = "rank"
    """1-based position in a recommendation list."""
    Feature = "feature"
    """Feature name in a long-format feature table."""
    Value = "value"
    """Feature value in a long-format feature table."""

    Interactions = (User, Item)
    """The two columns every interactions table has."""
