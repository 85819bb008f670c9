//! Files: `send --file` uploads each before the message that carries them,
//! `history` lists a message's files, `download` fetches one.

use std::path::{Path, PathBuf};

use palaver_client::types::attachments::Attachment;
use palaver_client::Client;
use tokio::io::AsyncWriteExt;

use crate::sanitize;
use crate::Failure;

/// The most files one message carries (the server's cap too).
pub const MAX_PER_MESSAGE: usize = 10;

/// Checks every file before any is uploaded: at most
/// [`MAX_PER_MESSAGE`], each a readable regular file with a name.
pub fn check(paths: &[PathBuf]) -> Result<(), Failure> {
    if paths.len() > MAX_PER_MESSAGE {
        return Err(Failure::Usage(format!(
            "--file: at most {MAX_PER_MESSAGE} files per message"
        )));
    }
    for path in paths {
        let shown = path.display();
        let meta = std::fs::metadata(path)
            .map_err(|err| Failure::Usage(format!("--file {shown}: {err}")))?;
        if !meta.is_file() {
            return Err(Failure::Usage(format!("--file {shown}: not a file")));
        }
        if name_of(path).is_none() {
            return Err(Failure::Usage(format!("--file {shown}: no file name")));
        }
    }
    Ok(())
}

fn name_of(path: &Path) -> Option<String> {
    Some(path.file_name()?.to_string_lossy().into_owned())
}

/// Uploads each file into `room`, in order; their ids, for the message.
///
/// Each file is read whole before it is sent: the client library's
/// `reqwest` is built without its `stream` feature, so a body is bytes in
/// memory. The server refuses one past its size limit by its declared length,
/// before reading it (`413 too_large`).
pub async fn upload(client: &Client, room: i64, paths: &[PathBuf]) -> Result<Vec<String>, Failure> {
    let mut ids = Vec::with_capacity(paths.len());
    for path in paths {
        let name = name_of(path).expect("checked");
        let bytes = tokio::fs::read(path)
            .await
            .map_err(|err| Failure::Usage(format!("--file {}: {err}", path.display())))?;
        let stored = client.upload_attachment(room, &name, bytes).await?;
        ids.push(stored.id);
    }
    Ok(ids)
}

/// A message's files, one line each under it: `  file ID SIZE NAME`.
pub fn lines(attachments: &[Attachment]) -> impl Iterator<Item = String> + '_ {
    attachments.iter().map(|file| {
        format!(
            "    file {}\t{}\t{}",
            sanitize::line(&file.id),
            size(file.size),
            sanitize::line(&file.name)
        )
    })
}

/// `size` bytes for a reader: `812 B`, `4.2 KiB`, `3.0 MiB`.
pub fn size(size: u64) -> String {
    const UNITS: [&str; 3] = ["KiB", "MiB", "GiB"];
    if size < 1024 {
        return format!("{size} B");
    }
    let mut value = size as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// Writes attachment `id` to `out`, or to stdout without one, chunk by
/// chunk as it arrives. A file partly written when the transfer fails is
/// removed.
pub async fn download(client: &Client, id: &str, out: Option<&Path>) -> Result<(), Failure> {
    // An id is URL-safe base64; anything else would change the request's path.
    if id.is_empty()
        || !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(Failure::Usage(format!("not a file id: {id}")));
    }
    let mut response = client.download_attachment(id).await?;
    let Some(path) = out else {
        let mut stdout = tokio::io::stdout();
        while let Some(chunk) = next_chunk(&mut response).await? {
            stdout
                .write_all(chunk.as_ref())
                .await
                .map_err(anyhow::Error::from)?;
        }
        stdout.flush().await.map_err(anyhow::Error::from)?;
        return Ok(());
    };
    let written = async {
        let mut file = tokio::fs::File::create(path)
            .await
            .map_err(|err| Failure::Usage(format!("--out {}: {err}", path.display())))?;
        let mut size = 0u64;
        while let Some(chunk) = next_chunk(&mut response).await? {
            size += chunk.as_ref().len() as u64;
            file.write_all(chunk.as_ref())
                .await
                .map_err(anyhow::Error::from)?;
        }
        file.flush().await.map_err(anyhow::Error::from)?;
        Ok::<_, Failure>(size)
    }
    .await;
    match written {
        Ok(size) => {
            println!("saved {} ({})", path.display(), self::size(size));
            Ok(())
        }
        Err(err) => {
            let _ = tokio::fs::remove_file(path).await;
            Err(err)
        }
    }
}

/// The response's next piece of body, or `None` at its end.
async fn next_chunk(response: &mut reqwest::Response) -> Result<Option<impl AsRef<[u8]>>, Failure> {
    response
        .chunk()
        .await
        .map_err(|err| Failure::Unreachable(err.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_a_person_would_say_them() {
        assert_eq!(size(0), "0 B");
        assert_eq!(size(1023), "1023 B");
        assert_eq!(size(1024), "1.0 KiB");
        assert_eq!(size(4300), "4.2 KiB");
        assert_eq!(size(3 * 1024 * 1024), "3.0 MiB");
        assert_eq!(size(5 * 1024 * 1024 * 1024 * 1024), "5120.0 GiB");
    }

    #[test]
    fn more_than_ten_files_or_a_missing_one_is_bad_usage() {
        let many = vec![PathBuf::from("Cargo.toml"); MAX_PER_MESSAGE + 1];
        assert!(matches!(check(&many), Err(Failure::Usage(_))));
        let missing = [PathBuf::from("/no/such/file")];
        assert!(matches!(check(&missing), Err(Failure::Usage(m)) if m.contains("/no/such/file")));
        assert!(matches!(
            check(&[PathBuf::from("/")]),
            Err(Failure::Usage(_))
        ));
    }
}
