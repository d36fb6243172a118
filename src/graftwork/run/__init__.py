"""Run folders: saving and loading trained models, and the rules for what graftwork may write over."""

from .folder import read_adapter, read_run_folder, save_run_folder, write_json
from .guard import check_out_dir, check_out_file, folder_format, is_run_folder
from .lock import out_lock
from .replace import recover_folder, write_folder

__all__ = ["check_out_dir", "check_out_file", "folder_format", "is_run_folder", "out_lock", "read_adapter",
           "read_run_folder", "recover_folder", "save_run_folder", "write_folder", "write_json"]
