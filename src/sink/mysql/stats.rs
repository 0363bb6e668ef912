//! Group statistics (`region_stats`): per 구 and per 법정동, the count and medians of what the API shows
//! beside a listing ("this flat vs the neighbourhood"). Recomputed from `listings` — the committed
//! state — for the regions that changed, so they are always a function of the rows, whatever the
//! order or number of batches that wrote them. MySQL has no MEDIAN: rows are read and the medians
//! computed here (a region holds a few thousand listings).

use std::collections::{BTreeMap, BTreeSet};

use crate::db::{Pool, Sql};
use crate::sink::SinkError;

#[derive(Default, Clone)]
struct Group {
    gu: Option<String>,
    dong: Option<String>,
    deposit: Vec<f64>,
    rent: Vec<f64>,
    rent_with_fee: Vec<f64>,
    monthly_cost: Vec<f64>,
    area: Vec<f64>,
    cost_m2: Vec<f64>,
    verified: u32,
    bait: u32,
    cross: u32,
    zigbang: u32,
    dabang: u32,
    n: u32,
}

/// Median of a sample (mean of the two middle values for an even count); None when empty.
pub fn median(v: &mut [f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    Some(if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    })
}

/// Recomputes the statistics of `regions` (None: every region in `listings` or `region_stats`).
pub async fn refresh(pool: &Pool, regions: Option<BTreeSet<String>>) -> Result<(), SinkError> {
    let regions: Vec<String> = match regions {
        Some(r) => r.into_iter().collect(),
        None => pool
            .fetch_all::<(String,)>(&Sql::new(
                "SELECT region_code FROM listings UNION SELECT region_code FROM region_stats",
            ))
            .await?
            .into_iter()
            .map(|r| r.0)
            .collect(),
    };
    for chunk in regions.chunks(8) {
        refresh_some(pool, chunk).await?;
    }
    Ok(())
}

/// One listing as the statistics read it.
type StatsRow = (
    String,
    String,
    Option<String>,
    Option<String>,
    i32,
    i32,
    f64,
    Option<f64>,
    Option<f64>,
    bool,
    bool,
    i8,
);

async fn refresh_some(pool: &Pool, regions: &[String]) -> Result<(), SinkError> {
    let mut q = Sql::new(
        "SELECT region_code, COALESCE(bjd_code, ''), gu, dong, deposit, rent, rent_with_fee, monthly_cost, \
         area_m2, broker_verified, bait_warning, platform_mask FROM listings WHERE region_code IN ",
    );
    q.push_list(regions);
    let rows: Vec<StatsRow> = pool.fetch_all(&q).await?;
    let mut groups: BTreeMap<(String, String), Group> = BTreeMap::new();
    for (region, dong_code, gu, dong, deposit, rent, rwf, cost, area, verified, bait, platforms) in
        rows
    {
        let (deposit, rent) = (f64::from(deposit), f64::from(rent));
        let mut keys = vec![(region.clone(), String::new())];
        if !dong_code.is_empty() {
            keys.push((region, dong_code));
        }
        for key in keys {
            let per_dong = !key.1.is_empty();
            let g = groups.entry(key).or_default();
            g.gu = g.gu.take().or(gu.clone());
            if per_dong {
                g.dong = g.dong.take().or(dong.clone());
            }
            g.n += 1;
            g.deposit.push(deposit);
            g.rent.push(rent);
            g.rent_with_fee.push(rwf);
            if let Some(c) = cost {
                g.monthly_cost.push(c);
                if let Some(a) = area.filter(|a| *a > 0.0) {
                    g.cost_m2.push(c / a);
                }
            }
            if let Some(a) = area {
                g.area.push(a);
            }
            g.verified += u32::from(verified);
            g.bait += u32::from(bait);
            g.cross += u32::from(platforms == 3);
            g.zigbang += u32::from(platforms & 1 == 1);
            g.dabang += u32::from(platforms & 2 == 2);
        }
    }
    let mut tx = pool.begin().await?;
    let mut del = Sql::new("DELETE FROM region_stats WHERE region_code IN ");
    del.push_list(regions);
    tx.execute(&del).await?;
    let rows: Vec<((String, String), Group)> = groups.into_iter().collect();

    for chunk in rows.chunks(500) {
        let mut q = Sql::new(
            "INSERT INTO region_stats (region_code, dong_code, gu, dong, listings, median_deposit, median_rent, \
             median_rent_with_fee, median_monthly_cost, median_area_m2, median_cost_m2, verified_share, \
             bait_share, cross_listed, zigbang, dabang) ",
        );
        q.push_values(chunk, |b, ((region, dong_code), g)| {
            let mut g = g.clone();
            let n = f64::from(g.n.max(1));
            b.push_bind(region)
                .push_bind(dong_code)
                .push_bind(g.gu.clone())
                .push_bind(g.dong.clone())
                .push_bind(g.n)
                .push_bind(median(&mut g.deposit))
                .push_bind(median(&mut g.rent))
                .push_bind(median(&mut g.rent_with_fee))
                .push_bind(median(&mut g.monthly_cost))
                .push_bind(median(&mut g.area))
                .push_bind(median(&mut g.cost_m2))
                .push_bind(f64::from(g.verified) / n)
                .push_bind(f64::from(g.bait) / n)
                .push_bind(g.cross)
                .push_bind(g.zigbang)
                .push_bind(g.dabang);
        });
        tx.execute(&q).await?;
    }
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::median;

    #[test]
    fn medians() {
        assert_eq!(median(&mut []), None);
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), Some(2.5));
    }
}
