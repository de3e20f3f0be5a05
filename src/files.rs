//! Small files the service writes for others to read (the key file, the port file): written
//! whole or not at all, so a reader never sees half of one.

use std::io::Write;
use std::path::Path;

/// Replaces `path` with `contents` atomically: a temporary file beside it is written, flushed to
/// disk and renamed over it. `owner_only` makes it readable and writable by its owner alone.
pub fn replace(path: &Path, contents: &[u8], owner_only: bool) -> std::io::Result<()> {
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::other("the path names no file"))?;
    let mut temporary_name = std::ffi::OsString::from(".");
    temporary_name.push(name);
    temporary_name.push(format!(".{}.tmp", std::process::id()));
    let temporary = path.with_file_name(temporary_name);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(if owner_only { 0o600 } else { 0o644 });
    }
    #[cfg(not(unix))]
    let _ = owner_only;
    let written = (|| {
        let mut file = options.open(&temporary)?;
        file.write_all(contents)?;
        file.sync_all()?;
        std::fs::rename(&temporary, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    written?;
    // The rename itself is durable once the directory is flushed (best effort: not every
    // platform lets a directory be opened).
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && let Ok(dir) = std::fs::File::open(dir)
    {
        let _ = dir.sync_all();
    }
    Ok(())
}

/// [`replace`], readable by its owner only.
pub fn replace_owner_only(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    replace(path, contents, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_whole_files_and_leaves_no_temporary_behind() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("port");
        replace(&path, b"1234\n", false).unwrap();
        replace(&path, b"5678\n", false).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "5678\n");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["port"]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            replace_owner_only(&path, b"x").unwrap();
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
