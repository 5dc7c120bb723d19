//! Reads the activation link from a picture of the QR code (a screenshot of the security-info
//! page, or the picture it offers to save).

use crate::Error;

/// The largest picture accepted, so a huge file cannot exhaust memory.
const MAX_PIXELS: u64 = 40_000_000;

pub fn decode_file(path: &std::path::Path) -> Result<String, Error> {
    let bytes = std::fs::read(path).map_err(|e| Error::Io(format!("{}: {e}", path.display())))?;
    decode(&bytes)
}

pub fn decode(bytes: &[u8]) -> Result<String, Error> {
    let reader = image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| Error::Usage(format!("cannot read the picture: {e}")))?;
    let (w, h) = reader
        .into_dimensions()
        .map_err(|e| Error::Usage(format!("cannot read the picture: {e}")))?;
    if u64::from(w) * u64::from(h) > MAX_PIXELS {
        return Err(Error::Usage("the picture is too large".into()));
    }
    let picture = image::load_from_memory(bytes)
        .map_err(|e| Error::Usage(format!("cannot read the picture: {e}")))?
        .to_luma8();
    let mut prepared = rqrr::PreparedImage::prepare(picture);
    for grid in prepared.detect_grids() {
        if let Ok((_, content)) = grid.decode() {
            return Ok(content);
        }
    }
    Err(Error::Usage("no QR code found in the picture".into()))
}

#[cfg(test)]
mod tests {
    use latchkey_protocol::ActivationLink;

    /// A QR code of `text` as the security-info page offers it (a PNG, 8 pixels a module).
    fn png_of(text: &str) -> Vec<u8> {
        let picture = qrcode::QrCode::new(text.as_bytes())
            .unwrap()
            .render::<image::Luma<u8>>()
            .module_dimensions(8, 8)
            .build();
        let mut png = Vec::new();
        image::DynamicImage::ImageLuma8(picture)
            .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .unwrap();
        png
    }

    #[test]
    fn the_terminal_app_reads_the_https_qr_code_and_the_older_latchkey_one() {
        let link = ActivationLink {
            server: "https://id.contoso.example/latchkey".into(),
            code: "b99vCpLg3ywsvGPjIgZ1j6G-JavqMJaJjfAiCV-XWEw".into(),
        };
        for text in [link.to_uri(), link.to_legacy_uri()] {
            let read = super::decode(&png_of(&text)).unwrap();
            assert_eq!(read, text);
            assert_eq!(ActivationLink::parse(&read).unwrap(), link, "{text}");
        }
        assert!(
            link.to_uri().starts_with(
                "https://id.contoso.example/latchkey/authenticator/app/activate#code="
            )
        );
    }
}
