"""Run folders: saving and loading trained models."""

from .folder import check_out_dir, read_adapter, read_run_folder, save_run_folder, write_json

__all__ = ["check_out_dir", "read_adapter", "read_run_folder", "save_run_folder", "write_json"]
