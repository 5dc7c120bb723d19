//! The offline world map: the generated land outlines and the script that draws them, the
//! coordinates in approval requests, and the map with a dot in the console's sign-in detail.

use latchkey_protocol::wire::{ApprovalKind, Decision, DeviceEvent};

use crate::browser::Chromedriver;
use crate::console::admin_browser;
use crate::phone::{Person, Phone, number_on, set_features, sign_in_log, start_sign_in};
use crate::support::{TestServer, demo_person, placed_server};

/// An address the DB-IP database places in London (51.5 N, 0.1 W).
const LONDON: &str = "81.2.69.160";

fn attribute(body: &str, element_id: &str, name: &str) -> Option<String> {
    let start = body.find(&format!("id=\"{element_id}\""))?;
    let tag_end = body[start..].find('>')? + start;
    let tag = &body[start..tag_end];
    let marker = format!("{name}=\"");
    let at = tag.find(&marker)? + marker.len();
    let end = tag[at..].find('"')? + at;
    Some(tag[at..end].to_string())
}

#[tokio::test]
async fn the_map_scripts_are_served_offline_and_need_nothing_the_csp_forbids() {
    let server = TestServer::start().await;
    let browser = server.browser();
    let world = browser
        .http
        .get(format!("{}/static/world-map.js", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(world.status(), 200);
    assert_eq!(world.headers()["content-type"], "text/javascript");
    let world = world.text().await.unwrap();
    assert!(
        world.contains("Natural Earth") && world.contains("world-atlas@2.0.2"),
        "the generated file names its source"
    );
    assert!(
        (30_000..70_000).contains(&world.len()),
        "a small asset: {} bytes",
        world.len()
    );
    let map = browser
        .http
        .get(format!("{}/static/map.js", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(map.status(), 200);
    let csp = map.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    let map = map.text().await.unwrap();
    assert!(map.contains("LatchkeyMap"));
    // Nothing from elsewhere, no inline style (the CSP has style-src 'self').
    let text = map.replace("http://www.w3.org/2000/svg", "");
    for forbidden in [
        "http://",
        "https://",
        "setAttribute(\"style\"",
        "fetch(",
        "XMLHttpRequest",
    ] {
        assert!(!text.contains(forbidden), "map.js uses {forbidden}");
    }
    assert!(csp.contains("script-src 'self'"), "{csp}");
}

/// Threat: the app's map putting a sign-in somewhere the person was not told about. The
/// coordinates travel only with a shown, database-placed location.
#[tokio::test]
async fn approval_requests_carry_coordinates_only_with_a_shown_location() {
    let Some(server) = placed_server().await else {
        return;
    };
    let bobby = Person::new(&server, "bobby", "Bobby Smith").await;
    let mut phone = Phone::with_phone_sign_in(&bobby, "Bobby's phone").await;
    let mut stream = phone.app.connect(phone.account).await.unwrap();

    // From London: the place and its coordinates.
    let london = server.browser_from(LONDON);
    let page = start_sign_in(&london, &bobby.upn).await;
    let Some(DeviceEvent::Request { request }) = stream.next().await else {
        panic!("the live channel delivers the request");
    };
    assert_eq!(request.kind, ApprovalKind::PhoneSignIn);
    assert!(request.location.as_deref().unwrap().starts_with("London"));
    let (lat, lon) = (request.latitude.unwrap(), request.longitude.unwrap());
    assert!((50.0..53.0).contains(&lat), "{lat}");
    assert!((-1.5..1.0).contains(&lon), "{lon}");
    phone.approve(&request, number_on(&page)).await;

    // The device sees the same in what it pulls, as JSON numbers.
    let json = serde_json::to_value(&request).unwrap();
    assert!(
        json["latitude"].is_f64() && json["longitude"].is_f64(),
        "{json}"
    );

    // From a private address: no place in the database, so no coordinates (null).
    let local = server.browser();
    let page = start_sign_in(&local, &bobby.upn).await;
    let Some(DeviceEvent::Request { request }) = stream.next().await else {
        panic!("request");
    };
    assert_eq!(request.location.as_deref(), Some("Private network"));
    assert_eq!((request.latitude, request.longitude), (None, None));
    let json = serde_json::to_value(&request).unwrap();
    assert!(
        json["latitude"].is_null() && json["longitude"].is_null(),
        "{json}"
    );
    phone
        .answer(&request, Decision::Deny, Some(number_on(&page)))
        .await
        .unwrap();

    // Location hidden by the policy: no coordinates either, even from London.
    set_features(&server, "disabled").await;
    let london = server.browser_from(LONDON);
    start_sign_in(&london, &bobby.upn).await;
    let Some(DeviceEvent::Request { request }) = stream.next().await else {
        panic!("request");
    };
    assert_eq!(request.location, None);
    assert_eq!((request.latitude, request.longitude), (None, None));
    phone.answer(&request, Decision::Deny, None).await.unwrap();
    stream.close().await;
}

async fn london_sign_in(server: &TestServer) -> (Vec<latchkey::demo::DemoPerson>, String) {
    let people = latchkey::demo::seed_demo_tenant(&server.latchkey)
        .await
        .unwrap();
    let bobby = demo_person(&people, "Bobby Smith");
    server
        .browser_from(LONDON)
        .sign_in_to_my_apps("bobby@latchkey.test", bobby.pass.expose())
        .await;
    let log = sign_in_log(server, "bobby@latchkey.test").await;
    let record = log
        .iter()
        .find(|r| r["location"]["city"] == "London")
        .expect("the London sign-in is logged");
    (people, record["id"].as_str().unwrap().to_string())
}

#[tokio::test]
async fn the_sign_in_detail_has_a_map_with_a_dot_at_the_coordinates_and_the_credit() {
    let Some(server) = placed_server().await else {
        return;
    };
    let (people, id) = london_sign_in(&server).await;
    let admin = admin_browser(&server, &people).await;
    let page = admin.get(&format!("/admin/logs/signins/{id}")).await;
    assert_eq!(page.status, 200);
    let lat: f64 = attribute(&page.body, "sign-in-map", "data-latitude")
        .expect("the map element")
        .parse()
        .unwrap();
    let lon: f64 = attribute(&page.body, "sign-in-map", "data-longitude")
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (50.0..53.0).contains(&lat) && (-1.5..1.0).contains(&lon),
        "{lat} {lon}"
    );
    assert!(page.body.contains("<script src=\"/static/map.js\""));
    assert!(page.body.contains("<script src=\"/static/world-map.js\""));
    assert!(
        page.body.contains("https://db-ip.com"),
        "DB-IP credit beside its data"
    );

    // A sign-in without coordinates (a private address) has no map.
    let bobby = demo_person(&people, "Bobby Smith");
    server
        .browser()
        .sign_in_to_my_apps("bobby@latchkey.test", bobby.pass.expose())
        .await;
    let log = sign_in_log(&server, "bobby@latchkey.test").await;
    let private = log
        .iter()
        .find(|r| r["location"]["city"].is_null())
        .expect("the private sign-in");
    let page = admin
        .get(&format!(
            "/admin/logs/signins/{}",
            private["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(page.status, 200);
    assert!(
        !page.body.contains("sign-in-map"),
        "no map without coordinates"
    );
    assert!(!page.body.contains("/static/map.js"));
}

/// In a real browser: the page's script draws the land and the dot, under the server's CSP.
#[tokio::test]
async fn chromium_draws_the_sign_in_map_with_a_dot_in_london() {
    let Some(server) = placed_server().await else {
        return;
    };
    let Some(driver) = Chromedriver::start().await else {
        return;
    };
    let (people, id) = london_sign_in(&server).await;
    let admin = demo_person(&people, "Avery Admin");
    let window = driver.window(&server, "console-sign-in-map", None).await;
    window
        .goto(&format!("/login?return_to=/admin/logs/signins/{id}"))
        .await;
    window
        .sign_in_with_pass("admin@latchkey.test", admin.pass.expose(), None)
        .await;
    window.find("#sign-in-map svg path").await;
    let label = window
        .find("#sign-in-map svg")
        .await
        .attr("aria-label")
        .await
        .unwrap()
        .unwrap_or_default();
    assert!(label.contains("London"), "{label}");
    let dot = window.find("#sign-in-map svg .latchkey-map-dot").await;
    let cx: f64 = dot.attr("cx").await.unwrap().unwrap().parse().unwrap();
    let cy: f64 = dot.attr("cy").await.unwrap().unwrap().parse().unwrap();
    // London in the 1000×500 frame: x ≈ 500, y ≈ (90 − 51.5) / 180 × 500 ≈ 107.
    assert!((495.0..505.0).contains(&cx), "{cx}");
    assert!((100.0..115.0).contains(&cy), "{cy}");
    let land = window
        .find("#sign-in-map svg .latchkey-map-land")
        .await
        .attr("d")
        .await
        .unwrap()
        .unwrap();
    assert!(land.len() > 30_000, "the whole land outline is drawn");
    window.shots("detail").await;
    window.close().await;
}
