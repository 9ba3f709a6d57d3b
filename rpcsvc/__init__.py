"""rpcsvc: a JSON-RPC 2.0 task service for collecting and analysing social-media posts."""

from .config import Settings
from .manager import TaskManager
from .task import Priority, TaskStatus

__all__ = ["Priority", "Settings", "TaskManager", "TaskStatus"]
__version__ = "0.1.0"
