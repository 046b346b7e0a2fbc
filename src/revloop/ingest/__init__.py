"""Reading exports: folders of CSV or Parquet files in the canonical form."""

from __future__ import annotations

from revloop.ingest._files import Dataset as Dataset
from revloop.ingest._files import find_files as find_files
from revloop.ingest._files import read_dir as read_dir
from revloop.ingest._files import read_table as read_table

__all__ = ["Dataset", "find_files", "read_dir", "read_table"]
