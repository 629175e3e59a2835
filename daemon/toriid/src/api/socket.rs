//! Binding the API's Unix socket: device control is reachable only through it, so its
//! file mode (0660: the `torii` user and group) is its access control for now.

use std::io;
use std::os::unix::fs::{FileTypeExt as _, PermissionsExt as _};
use std::path::Path;

use tokio::net::UnixListener;

pub const SOCKET_MODE: u32 = 0o660;

/// Binds `path`, replacing a stale socket left by a previous run, and restricts it to
/// owner and group. Refuses to replace a socket that still answers (another toriid)
/// or a file that is not a socket.
pub fn bind_unix(path: &Path) -> io::Result<UnixListener> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    format!("{} is in use (is another toriid running?)", path.display()),
                ));
            }
            std::fs::remove_file(path)?;
        }
        Ok(_) => {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{} exists and is not a socket", path.display()),
            ));
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let listener = UnixListener::bind(path)?;
    // The unit's UMask=0007 already makes the socket 0660 at bind time; this covers
    // runs outside systemd.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(SOCKET_MODE))?;
    Ok(listener)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn binds_with_mode_0660_and_replaces_stale_sockets() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/api.sock");
        let listener = bind_unix(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, SOCKET_MODE);
        // A live socket is not taken over.
        assert_eq!(
            bind_unix(&path).unwrap_err().kind(),
            io::ErrorKind::AddrInUse
        );
        drop(listener);
        // A stale one is.
        bind_unix(&path).unwrap();
    }

    #[test]
    fn never_deletes_a_regular_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("api.sock");
        std::fs::write(&path, "x").unwrap();
        assert!(bind_unix(&path).is_err());
        assert!(path.is_file());
    }
}
