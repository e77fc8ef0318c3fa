"""vaultManager: folder and note create / rename / move / copy / delete, listing, openNote."""

from __future__ import annotations

import os
import shutil

import regex

from .handlers import Call, ToolError, tool
from .fs import file_info, remove, walk
from .paths import is_hidden
from .patterns import BoundedPattern, PatternError


def _required(call: Call, key: str, message: str) -> str:
    value = call.args.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ToolError(message, "E_MISSING_REQUIRED_ARG")
    return value


def _check_move(rel: str, new_rel: str, what: str) -> None:
    """Refused in every mode: moving onto itself or into itself would delete the source on overwrite."""
    if not rel:
        raise ToolError(f"Failed to move {what}: cannot move the vault root")
    if new_rel == rel or new_rel.startswith(rel + "/"):
        raise ToolError(f"Failed to move {what}: destination is the source or inside it: {new_rel}")


@tool("vaultManager_createFolder")
def create_folder(ex, call: Call):
    rel, path = ex.resolve(_required(call, "path", "Path is required"))
    if path.is_dir():
        return {"path": rel, "existed": True}
    if path.exists():
        raise ToolError(f"Failed to create folder: Path exists but is not a folder: {rel}")
    try:
        path.mkdir(parents=True)
    except OSError as exc:
        raise ToolError(f"Failed to create folder: {exc.strerror}: {rel}") from None
    return {"path": rel, "existed": False}


@tool("vaultManager_deleteNote", flat=True)
def delete_note(ex, call: Call):
    rel, path = ex.resolve(_required(call, "path", "Path is required"))
    if not path.exists() and not path.is_symlink():
        raise ToolError(f"Failed to delete note: File not found: {rel}")
    if path.is_dir():
        raise ToolError(f"Failed to delete note: Path is not a file: {rel}")
    path.unlink()  # vault.delete: permanent, not the trash
    return {"path": rel, "success": True}


@tool("vaultManager_deleteFolder", flat=True)
def delete_folder(ex, call: Call):
    rel, path = ex.resolve(_required(call, "path", "Path is required"))
    if not rel:
        raise ToolError("Failed to delete folder: cannot delete the vault root")
    if not path.exists():
        raise ToolError(f"Failed to delete folder: Folder not found: {rel}")
    if not path.is_dir() or path.is_symlink():
        raise ToolError(f"Failed to delete folder: Path is not a folder: {rel}")
    # Obsidian only sees indexed children, so a folder holding only dot-files counts as empty
    if not call.args.get("recursive") and any(not e.name.startswith(".") for e in os.scandir(path)):
        raise ToolError(f"Failed to delete folder: Folder is not empty: {rel}")
    shutil.rmtree(path)
    return {"path": rel, "success": True}


def _make_parents(ex, path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ToolError(f"Failed to create parent folder of {ex.paths.rel(path)}: {exc.strerror}") from None


def _move(ex, call: Call, what: str, want_dir: bool):
    rel, path = ex.resolve(_required(call, "path", "Path is required"))
    new_rel, new_path = ex.resolve(_required(call, "newPath", "New path is required"))
    _check_move(rel, new_rel, what)
    title = "File" if not want_dir else "Folder"
    if not path.exists():
        raise ToolError(f"Failed to move {what}: {title} not found: {rel}")
    if path.is_dir() != want_dir:
        raise ToolError(f"Failed to move {what}: Path is not a {'folder' if want_dir else 'file'}: {rel}")
    if new_path.exists() or new_path.is_symlink():
        if not call.args.get("overwrite"):
            raise ToolError(f"Failed to move {what}: Destination already exists: {new_rel}")
        remove(new_path)
    _make_parents(ex, new_path)
    try:
        os.rename(path, new_path)  # vault.rename: wikilinks pointing at the old path are not updated
    except OSError as exc:
        raise ToolError(f"Failed to move {what}: {exc.strerror}: {new_rel}") from None
    return {"path": rel, "newPath": new_rel, "success": True, "recommendations": []}


@tool("vaultManager_moveNote", flat=True)
def move_note(ex, call: Call):
    return _move(ex, call, "note", want_dir=False)


@tool("vaultManager_moveFolder", flat=True)
def move_folder(ex, call: Call):
    return _move(ex, call, "folder", want_dir=True)


@tool("vaultManager_editFolder", flat=True)
def edit_folder(ex, call: Call):
    rel, path = ex.resolve(_required(call, "path", "Path is required"))
    new_rel, new_path = ex.resolve(_required(call, "newPath", "New path is required"))
    _check_move(rel, new_rel, "folder")
    if ex.strict and new_path.exists():
        raise ToolError(f"Failed to rename folder: Destination already exists: {new_rel}")
    try:
        os.rename(path, new_path)  # the raw adapter rename: no existence or overwrite checks
    except OSError as exc:
        raise ToolError(f"Failed to rename folder: {exc.strerror}: '{rel}' -> '{new_rel}'") from None
    return {"path": rel, "newPath": new_rel, "success": True}


@tool("vaultManager_duplicateNote", flat=True)
def duplicate_note(ex, call: Call):
    src_rel, src = ex.resolve(_required(call, "sourcePath", "Source path is required"))
    dst_rel, dst = ex.resolve(_required(call, "targetPath", "Target path is required"))
    if not src.is_file():
        raise ToolError(f"Failed to duplicate note: Source file not found: {src_rel}")
    auto, overwritten = False, False
    if dst.exists():
        if call.args.get("autoIncrement"):
            stem, dot, ext = dst_rel.rpartition(".") if "." in dst_rel.rsplit("/", 1)[-1] else (dst_rel, "", "")
            for n in range(1, 1001):
                candidate = f"{stem} copy{'' if n == 1 else f' {n}'}{dot}{ext}"
                dst_rel, dst = ex.resolve(candidate)
                if not dst.exists():
                    break
            else:
                raise ToolError("Failed to duplicate note: no free name after 1000 copies")
            auto = True
        elif call.args.get("overwrite"):
            if dst.is_dir():
                raise ToolError(f"Failed to duplicate note: Target is a folder: {dst_rel}")
            dst.unlink()
            overwritten = True
        else:
            raise ToolError(f"Failed to duplicate note: Target file already exists: {dst_rel}")
    _make_parents(ex, dst)
    shutil.copyfile(src, dst)
    return {
        "sourcePath": src_rel,
        "targetPath": dst_rel,
        "success": True,
        "wasAutoIncremented": auto,
        "wasOverwritten": overwritten,
    }


def _name_filter(ex, pattern):
    """The plugin's filter: a case-insensitive regex on the name, or a glob if it is not a valid regex."""
    if not isinstance(pattern, str) or not pattern:
        return None
    try:
        return BoundedPattern(ex, pattern, ignore_case=True).search
    except PatternError:
        glob = regex.escape(pattern).replace(r"\*", ".*").replace(r"\?", ".")
        return BoundedPattern(ex, glob, ignore_case=True).search


@tool("vaultManager_listDirectory")
def list_directory(ex, call: Call):
    raw = call.args.get("path", "")
    rel, path = ex.resolve("" if raw in ("/", ".") else raw)
    if not path.is_dir():
        raise ToolError(f"Failed to list directory contents: Folder not found at path: {rel or '/'}")
    depth = call.args.get("depth", 0)
    depth = int(depth) if isinstance(depth, (int, float)) and not isinstance(depth, bool) and depth > 0 else 0
    files_only, folders_only = bool(call.args.get("filesOnly")), bool(call.args.get("foldersOnly"))
    want_files = call.args.get("includeFiles", True) is not False and not folders_only
    want_folders = call.args.get("includeFolders", True) is not False and not files_only
    match = _name_filter(ex, call.args.get("filter"))
    files, folders = [], []
    for child, is_dir, st in walk(ex, rel, min(depth, 10_000) + 1):  # the same links rule as the searches
        name = child.rsplit("/", 1)[-1]
        if (want_folders if is_dir else want_files) and (match is None or match(name)):
            if is_dir:
                folders.append({"name": name, "path": child})
            else:
                files.append(file_info(child, st))
    files.sort(key=lambda f: -f["modified"])
    folders.sort(key=lambda f: f["name"])
    return {
        "path": rel or "/",
        "files": files,
        "folders": folders,
        "summary": {"fileCount": len(files), "folderCount": len(folders), "totalItems": len(files) + len(folders)},
    }


@tool("vaultManager_openNote")
def open_note(ex, call: Call):
    raw = _required(call, "path", "Path is required")
    if "." not in raw.rsplit("/", 1)[-1]:
        raw += ".md"  # the one operation that adds the extension itself
    rel, path = ex.resolve(raw)
    if not path.is_file() or is_hidden(rel):
        raise ToolError(f"Note not found at path: {rel}")
    return {"path": rel, "opened": True, "mode": call.args.get("mode", "current")}
