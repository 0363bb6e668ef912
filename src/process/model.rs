//! The canonical source listing: what [`super::normalize`] makes of every platform's payload, and what
//! the later stages (detect, resolve, verify) work on. One type, one unit per quantity: money in 만원,
//! area in m², distances in metres, times in Unix seconds.

use serde::{Deserialize, Serialize};

use crate::topics::envelope::Platform;

/// A listing's key on its platform: `zigbang:48700552`, `dabang:6881a195220d4f2329800565`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SourceKey {
    /// The platform that lists it.
    pub platform: Platform,
    /// The platform's own id.
    pub id: String,
}

impl std::fmt::Display for SourceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.platform.as_str(), self.id)
    }
}

/// Which floor a flat is on, as precisely as the platform says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Floor {
    /// An exact storey above ground (1 = ground floor).
    Level(i16),
    /// 반지하 / 반지층 (and 지하 basements).
    SemiBasement,
    /// 옥탑 / 옥탑방.
    Rooftop,
    /// Only the band is published (Zigbang and Dabang hide exact floors of officetels): 저/중/고.
    Band(FloorBand),
    /// Not stated.
    Unknown,
}

/// 저/중/고: the lower, middle or upper third of a building.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FloorBand {
    /// 저층.
    Low,
    /// 중층.
    Mid,
    /// 고층.
    High,
}

impl Floor {
    /// Whether two floor statements can describe the same flat: equal, or an exact level and a band
    /// (the building height is rarely known, so any band is compatible with any level above ground).
    pub fn compatible(self, other: Floor) -> bool {
        match (self, other) {
            (a, b) if a == b => true,
            (Floor::Unknown, _) | (_, Floor::Unknown) => true,
            (Floor::Level(n), Floor::Band(_)) | (Floor::Band(_), Floor::Level(n)) => n >= 1,
            _ => false,
        }
    }
}

/// How the flat is let.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Lease {
    /// 월세: deposit plus monthly rent.
    Monthly,
    /// 전세: one lump-sum deposit, no rent.
    Jeonse,
}

/// The kind of building (Zigbang's `serviceType`; Dabang's `roomTypeName` when it says 오피스텔).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Building {
    /// 원룸 building (다가구/다세대).
    OneRoomHouse,
    /// 빌라.
    Villa,
    /// 오피스텔.
    Officetel,
    /// 아파트.
    Apartment,
    /// Not stated.
    Unknown,
}

/// The layout (Zigbang's `roomType`, Dabang's `roomTypeName`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Layout {
    /// 원룸 / 오픈형원룸.
    OneRoom,
    /// 분리형원룸 (kitchen separated).
    SeparatedOneRoom,
    /// 복층형원룸 (duplex).
    Duplex,
    /// 투룸 (and larger).
    TwoRoom,
    /// Not stated.
    Unknown,
}

impl Layout {
    /// Rooms as a renter counts them: the one-room variants are 1, 투룸 is 2.
    pub fn rooms(self) -> Option<u8> {
        match self {
            Layout::OneRoom | Layout::SeparatedOneRoom | Layout::Duplex => Some(1),
            Layout::TwoRoom => Some(2),
            Layout::Unknown => None,
        }
    }
}

/// How far to trust coordinates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Precision {
    /// The building's position (Zigbang v3 `location`).
    Exact,
    /// Deliberately moved by up to ~200 m (Dabang `randomLocation`, Zigbang `random_location`).
    Jittered,
}

impl Precision {
    /// The largest displacement, in metres, that this precision allows.
    pub fn tolerance_m(self) -> f64 {
        match self {
            Precision::Exact => 30.0,
            Precision::Jittered => 220.0,
        }
    }
}

/// A point with its precision.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Location {
    /// Latitude (WGS84).
    pub lat: f64,
    /// Longitude (WGS84).
    pub lng: f64,
    /// How far to trust it.
    pub precision: Precision,
}

impl Location {
    /// Great-circle distance in metres (equirectangular; exact enough within a city).
    pub fn distance_m(&self, other: &Location) -> f64 {
        let k = std::f64::consts::PI / 180.0;
        let x = (other.lng - self.lng) * k * ((self.lat + other.lat) * 0.5 * k).cos();
        let y = (other.lat - self.lat) * k;
        (x * x + y * y).sqrt() * 6_371_000.0
    }
}

/// The broker a listing names, with its registration number normalized across the three formats
/// (`crate::topics::keys::normalize_registration`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BrokerRef {
    /// Normalized 중개사무소 등록번호.
    pub registration_number: String,
    /// As the platform wrote it.
    pub registration_number_raw: String,
    /// The person who posted it, if named.
    pub person: Option<String>,
    /// The office's name, if given.
    pub office: Option<String>,
}

/// One listing on one platform, normalized. Produced by [`super::normalize::normalize`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceListing {
    /// Platform and id.
    pub key: SourceKey,
    /// Payload format it was read from (`zigbang.v3.item`, …).
    pub format: String,
    /// 월세 or 전세.
    pub lease: Lease,
    /// 보증금, 만원.
    pub deposit: u32,
    /// 월세, 만원 (0 for 전세).
    pub rent: u32,
    /// 관리비 in 만원 (one decimal), `None` when the platform says it cannot tell (`관리비 확인 불가`).
    pub fee: Option<f64>,
    /// 전용면적, m², when stated.
    pub area_m2: Option<f64>,
    /// Floor.
    pub floor: Floor,
    /// Storeys of the building, when stated.
    pub building_floors: Option<i16>,
    /// Layout.
    pub layout: Layout,
    /// Building kind.
    pub building: Building,
    /// Facing: `N`, `NE`, `E`, `SE`, `S`, `SW`, `W`, `NW`.
    pub direction: Option<String>,
    /// 5-digit 시군구 code derived from the address (else the envelope's).
    pub region_code: String,
    /// 구 name.
    pub gu: Option<String>,
    /// 법정동 name (e.g. `성산동`).
    pub dong: Option<String>,
    /// 10-digit 법정동 code, when the payload has it.
    pub bjd_code: Option<String>,
    /// Lot number (`593-3`), when the payload has it.
    pub lot: Option<String>,
    /// Coordinates, when the payload has them.
    pub location: Option<Location>,
    /// Nearest facilities the payload reports: kind (`subway`, `convenience_store`, `cafe`, `mart`,
    /// `pharmacy`, `laundry`, `bus_stop`, …) → metres. Empty when the payload carries none (unknown,
    /// not zero).
    pub facilities: Vec<(String, u32)>,
    /// Subway stations named by the payload.
    pub subway_stations: Vec<String>,
    /// The broker, when named.
    pub broker: Option<BrokerRef>,
    /// Title.
    pub title: String,
    /// Link to the listing on its platform.
    pub url: String,
    /// First image, if any.
    pub image_url: Option<String>,
    /// When the platform says it was posted (Unix seconds), if it says.
    pub posted_at: Option<i64>,
    /// When the platform says it was last updated (Unix seconds), if it says.
    pub updated_at: Option<i64>,
}

impl SourceListing {
    /// A listing that knows only its key, payload format and price; every other field is unknown or
    /// empty until the parser fills it in.
    pub fn new(key: SourceKey, format: &str, deposit: u32, rent: u32) -> SourceListing {
        SourceListing {
            key,
            format: format.into(),
            lease: if rent == 0 {
                Lease::Jeonse
            } else {
                Lease::Monthly
            },
            deposit,
            rent,
            fee: None,
            area_m2: None,
            floor: Floor::Unknown,
            building_floors: None,
            layout: Layout::Unknown,
            building: Building::Unknown,
            direction: None,
            region_code: String::new(),
            gu: None,
            dong: None,
            bjd_code: None,
            lot: None,
            location: None,
            facilities: Vec::new(),
            subway_stations: Vec::new(),
            broker: None,
            title: String::new(),
            url: String::new(),
            image_url: None,
            posted_at: None,
            updated_at: None,
        }
    }

    /// 평 from m² (1 평 = 3.3058 m²).
    pub fn area_pyeong(&self) -> Option<f64> {
        self.area_m2.map(|a| a / 3.3058)
    }
}
