//! Thumbnails of image attachments: made once at the fitted size and type,
//! served with a download's headers to those who may read the image only,
//! refused for images past the size bounds without decoding them, and gone
//! with their image; on both stores.

use std::io::Cursor;
use std::time::Duration;

use image::{ImageFormat, RgbImage};

use crate::attachments::{eventually, sha256_hex, stored_files, upload};
use crate::helpers::*;

/// An image of `width`×`height` pixels with something in it (a gradient),
/// encoded as `format`.
pub(crate) fn picture(width: u32, height: u32, format: ImageFormat) -> Vec<u8> {
    let image = RgbImage::from_fn(width, height, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, ((x + y) % 256) as u8])
    });
    let mut out = Vec::new();
    image.write_to(&mut Cursor::new(&mut out), format).unwrap();
    out
}

/// A 76-byte PNG whose header says it is `width`×`height` 8-bit RGBA (14.4
/// GB decoded at 60000×60000), with an empty data stream.
fn png_claiming(width: u32, height: u32) -> Vec<u8> {
    let mut header = width.to_be_bytes().to_vec();
    header.extend_from_slice(&height.to_be_bytes());
    header.extend_from_slice(&[8, 6, 0, 0, 0]);
    let data = [0x78, 0x01, 0x01, 0x00, 0x00, 0xff, 0xff, 0, 0, 0, 1];
    let mut png = vec![0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a];
    for (kind, body) in [(b"IHDR", &header[..]), (b"IDAT", &data[..]), (b"IEND", &[])] {
        png.extend_from_slice(&(body.len() as u32).to_be_bytes());
        let mut chunk = kind.to_vec();
        chunk.extend_from_slice(body);
        png.extend_from_slice(&chunk);
        png.extend_from_slice(&crc32(&chunk).to_be_bytes());
    }
    png
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn thumbnail(user: &TestUser, id: &str) -> reqwest::RequestBuilder {
    user.client.request(
        reqwest::Method::GET,
        &format!("/api/v1/attachments/{id}/thumbnail"),
    )
}

#[tokio::test]
async fn a_png_and_a_jpeg_get_thumbnails_of_the_fitted_size_and_their_type_made_once() {
    let app = spawn_app().await;
    let alice = app.signup("alice").await;
    let bob = app.signup("bob").await;
    let room = app.room_with(&alice, &[&bob]).await;
    for (name, format, (width, height), content_type, fitted) in [
        (
            "wide.png",
            ImageFormat::Png,
            (640, 480),
            "image/png",
            (320, 240),
        ),
        (
            "tall.jpg",
            ImageFormat::Jpeg,
            (200, 400),
            "image/jpeg",
            (160, 320),
        ),
        (
            "small.png",
            ImageFormat::Png,
            (30, 20),
            "image/png",
            (30, 20),
        ),
    ] {
        let before = stored_files(&app);
        let image = upload(&alice, room.id, name, &picture(width, height, format)).await;
        alice
            .client
            .post_with_attachments(room.id, name, std::slice::from_ref(&image.id))
            .await
            .unwrap();
        let response = thumbnail(&bob, &image.id).send().await.unwrap();
        assert_eq!(response.status(), 200, "{name}");
        let headers = response.headers().clone();
        let header = |name: &str| headers[name].to_str().unwrap().to_owned();
        assert_eq!(header("content-type"), content_type, "{name}");
        assert_eq!(header("x-content-type-options"), "nosniff");
        assert!(header("content-security-policy").starts_with("sandbox;"));
        assert!(header("content-disposition").starts_with("inline;"));
        let etag = format!(
            "\"{}.thumbnail\"",
            sha256_hex(&picture(width, height, format))
        );
        assert_eq!(header("etag"), etag);
        let made = response.bytes().await.unwrap();
        let decoded = image::load_from_memory(&made).unwrap();
        assert_eq!((decoded.width(), decoded.height()), fitted, "{name}");
        assert_eq!(
            image::guess_format(&made).unwrap(),
            if content_type == "image/png" {
                ImageFormat::Png
            } else {
                ImageFormat::Jpeg
            }
        );
        // Kept beside the image, and served from there thereafter.
        assert_eq!(stored_files(&app), before + 2, "{name}");
        let again = thumbnail(&alice, &image.id).send().await.unwrap();
        assert_eq!(again.bytes().await.unwrap(), made);
        assert_eq!(stored_files(&app), before + 2, "{name}");
        let cached = thumbnail(&bob, &image.id)
            .header(reqwest::header::IF_NONE_MATCH, &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(cached.status(), 304);
    }
}

#[tokio::test]
async fn decompression_bombs_are_refused_and_nothing_is_decoded_or_kept() {
    let app = spawn_app().await;
    let alice = app.signup("alice").await;
    let room = app.room_with(&alice, &[]).await;
    // A header claiming 60000×60000 (past 16384 a side), and a grey
    // 8000×6000 that compresses to a few tens of kilobytes (48 megapixels,
    // past 40).
    let grey = {
        let image = image::GrayImage::from_pixel(8000, 6000, image::Luma([128]));
        let mut out = Vec::new();
        image
            .write_to(&mut Cursor::new(&mut out), ImageFormat::Png)
            .unwrap();
        out
    };
    assert!(grey.len() < 1024 * 1024, "{}", grey.len());
    for (name, bytes, size) in [
        ("bomb.png", png_claiming(60_000, 60_000), "60000×60000"),
        ("grey.png", grey, "8000×6000"),
    ] {
        let image = upload(&alice, room.id, name, &bytes).await;
        let before = stored_files(&app);
        let refused = alice
            .client
            .download_thumbnail(&image.id)
            .await
            .unwrap_err();
        let palaver_client::ClientError::Api {
            status,
            code,
            message,
        } = &refused
        else {
            panic!("{name}: {refused}");
        };
        assert_eq!((*status, code.as_str()), (422, "invalid_input"), "{name}");
        assert!(message.contains(size), "{name}: {message}");
        assert_eq!(stored_files(&app), before, "{name}: a thumbnail was kept");
    }
}

#[tokio::test]
async fn only_who_may_read_the_image_gets_its_thumbnail_and_only_images_have_one() {
    let app = spawn_app().await;
    let alice = app.signup("alice").await;
    let bob = app.signup("bob").await;
    let carol = app.signup("carol").await;
    let room = app.room_with(&alice, &[&bob]).await;
    let image = upload(&alice, room.id, "a.png", &picture(40, 40, ImageFormat::Png)).await;
    let text = upload(&alice, room.id, "a.txt", b"words").await;
    let missing = status_and_code(
        alice
            .client
            .download_thumbnail("AAAAAAAAAAAAAAAAAAAAAA")
            .await,
    );
    assert_eq!(missing, (404, "not_found".into()));
    // Unclaimed, the uploader's alone.
    assert_eq!(
        status_and_code(bob.client.download_thumbnail(&image.id).await),
        missing
    );
    alice
        .client
        .post_with_attachments(room.id, "look", &[image.id.clone(), text.id.clone()])
        .await
        .unwrap();
    bob.client.download_thumbnail(&image.id).await.unwrap();
    assert_eq!(
        status_and_code(carol.client.download_thumbnail(&image.id).await),
        missing
    );
    assert_eq!(
        status_and_code(bob.client.download_thumbnail(&text.id).await),
        missing
    );
}

#[tokio::test]
async fn a_deleted_messages_thumbnail_is_gone_with_its_image() {
    let app = spawn_app_with(|settings| {
        settings.attachments.collect_every = Duration::from_millis(100);
    })
    .await;
    let alice = app.signup("alice").await;
    let bob = app.signup("bob").await;
    let room = app.room_with(&alice, &[&bob]).await;
    let image = upload(
        &alice,
        room.id,
        "a.jpg",
        &picture(400, 300, ImageFormat::Jpeg),
    )
    .await;
    let message = alice
        .client
        .post_with_attachments(room.id, "look", std::slice::from_ref(&image.id))
        .await
        .unwrap();
    bob.client.download_thumbnail(&image.id).await.unwrap();
    assert_eq!(stored_files(&app), 2);
    alice
        .client
        .delete_message(room.id, message.seq)
        .await
        .unwrap();
    assert_eq!(
        status_and_code(bob.client.download_thumbnail(&image.id).await),
        (404, "not_found".into())
    );
    eventually(
        "the deleted message's thumbnail was not removed",
        async || stored_files(&app) == 0,
    )
    .await;
}
