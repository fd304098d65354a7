"""recexp: recommender-system experiments you can trust."""

from recexp.columns import Columns
from recexp.dataset import Dataset

__all__ = ["Columns", "Dataset", "__version__"]
__version__ = "0.1.0"
