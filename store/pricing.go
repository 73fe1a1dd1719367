package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

// Season is the meteorological season at the property (the enrichment flips it south of the
// equator).
type Season string

const (
	SeasonWinter Season = "winter"
	SeasonSpring Season = "spring"
	SeasonSummer Season = "summer"
	SeasonAutumn Season = "autumn"
)

// PricingBase is a day's own data, as the user uploaded it.
type PricingBase struct {
	// Date is the calendar day as written in its own location; the time of day is ignored.
	Date time.Time
	// Price is the day's price; nil when the upload had none.
	Price *float64
	// Occupancy is in percent, 0 to 100; nil when unknown.
	Occupancy *float64
}

// PricingFeatures is what enrichment adds to a day.
type PricingFeatures struct {
	// Date is the calendar day as written in its own location; the time of day is ignored.
	Date time.Time
	// Weather of the day; nil beyond the forecast horizon or when the weather API had nothing.
	TempMaxC        *float64
	TempMinC        *float64
	PrecipitationMM *float64
	WeatherCode     *int // WMO code, 0 to 99
	IsHoliday       bool
	HolidayName     string // empty when not a holiday, or unnamed
	// Calendar features; the database checks that they agree with Date.
	DayOfWeek int // ISO: 1 is Monday, 7 is Sunday
	IsWeekend bool
	Month     int
	Quarter   int
	ISOWeek   int
	ISOYear   int
	Season    Season
	// DaysToNextHoliday is nil when no holiday is known ahead.
	DaysToNextHoliday *int
}

// PricingRow is one stored day of a property.
type PricingRow struct {
	Date      time.Time // midnight UTC of the day
	Price     *float64
	Occupancy *float64
	// Features is nil until the day is enriched.
	Features   *PricingFeatures
	EnrichedAt time.Time // zero until enriched
}

// upsertBatchRows bounds the rows one statement carries. In the simple protocol the arguments are
// spelled out in the SQL text, so a batch of this size is a statement of a few hundred kilobytes.
const upsertBatchRows = 1000

// UpsertPricingRows writes the days' prices and occupancy, keeping any features already there. It
// runs in one transaction: either every day is written or none.
func (s *Store) UpsertPricingRows(ctx context.Context, propertyID string, rows []PricingBase) error {
	if len(rows) == 0 {
		return nil
	}
	dates, err := pgDates(len(rows), func(i int) time.Time { return rows[i].Date })
	if err != nil {
		return fmt.Errorf("upsert pricing rows of %s: %w", propertyID, err)
	}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		return upsertPricingBase(ctx, tx, propertyID, dates, rows)
	})
	if err != nil {
		return fmt.Errorf("upsert pricing rows of %s: %w", propertyID, classify(err))
	}
	s.log.V(1).Info("Upserted pricing rows", "property", propertyID, "rows", len(rows))
	return nil
}

// upsertPricingBase writes the days' prices and occupancy in tx, in batches; dates are the rows'
// days as pgDates checked them.
func upsertPricingBase(ctx context.Context, tx pgx.Tx, propertyID string, dates []pgtype.Date, rows []PricingBase) error {
	for start := 0; start < len(rows); start += upsertBatchRows {
		batch := rows[start:min(start+upsertBatchRows, len(rows))]
		prices := make([]*float64, len(batch))
		occupancy := make([]*float64, len(batch))
		for i, r := range batch {
			prices[i], occupancy[i] = r.Price, r.Occupancy
		}
		if _, err := tx.Exec(ctx, `
			INSERT INTO pricing_rows AS r (property_id, date, price, occupancy)
			SELECT $1, d.date, d.price, d.occupancy
			FROM unnest($2::date[], $3::numeric[], $4::float8[]) AS d(date, price, occupancy)
			ON CONFLICT (property_id, date) DO UPDATE SET
				price = EXCLUDED.price,
				occupancy = EXCLUDED.occupancy`,
			propertyID, dates[start:start+len(batch)], prices, occupancy); err != nil {
			return err
		}
	}
	return nil
}

// UpsertPricingFeatures writes enrichment features of the days, keeping their prices and
// occupancy; a day without a row gets one with no price (enrichment may cover days to forecast).
// It stamps the days' EnrichedAt and runs in one transaction: either every day is written or none.
func (s *Store) UpsertPricingFeatures(ctx context.Context, propertyID string, features []PricingFeatures) error {
	if len(features) == 0 {
		return nil
	}
	dates, err := pgDates(len(features), func(i int) time.Time { return features[i].Date })
	if err != nil {
		return fmt.Errorf("upsert pricing features of %s: %w", propertyID, err)
	}
	now := s.now()
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		for start := 0; start < len(features); start += upsertBatchRows {
			batch := features[start:min(start+upsertBatchRows, len(features))]
			c := newFeatureColumns(len(batch))
			for _, f := range batch {
				c.add(f)
			}
			if _, err := tx.Exec(ctx, `
				INSERT INTO pricing_rows AS r (property_id, date, temp_max_c, temp_min_c, precipitation_mm,
					weather_code, is_holiday, holiday_name, day_of_week, is_weekend, month, quarter, iso_week,
					iso_year, season, days_to_next_holiday, enriched_at)
				SELECT $1, f.date, f.temp_max_c, f.temp_min_c, f.precipitation_mm, f.weather_code, f.is_holiday,
					f.holiday_name, f.day_of_week, f.is_weekend, f.month, f.quarter, f.iso_week, f.iso_year,
					f.season, f.days_to_next_holiday, $17::timestamptz
				FROM unnest($2::date[], $3::float8[], $4::float8[], $5::float8[], $6::int[], $7::bool[],
					$8::text[], $9::int[], $10::bool[], $11::int[], $12::int[], $13::int[], $14::int[],
					$15::text[], $16::int[])
					AS f(date, temp_max_c, temp_min_c, precipitation_mm, weather_code, is_holiday, holiday_name,
						day_of_week, is_weekend, month, quarter, iso_week, iso_year, season, days_to_next_holiday)
				ON CONFLICT (property_id, date) DO UPDATE SET
					temp_max_c = EXCLUDED.temp_max_c,
					temp_min_c = EXCLUDED.temp_min_c,
					precipitation_mm = EXCLUDED.precipitation_mm,
					weather_code = EXCLUDED.weather_code,
					is_holiday = EXCLUDED.is_holiday,
					holiday_name = EXCLUDED.holiday_name,
					day_of_week = EXCLUDED.day_of_week,
					is_weekend = EXCLUDED.is_weekend,
					month = EXCLUDED.month,
					quarter = EXCLUDED.quarter,
					iso_week = EXCLUDED.iso_week,
					iso_year = EXCLUDED.iso_year,
					season = EXCLUDED.season,
					days_to_next_holiday = EXCLUDED.days_to_next_holiday,
					enriched_at = EXCLUDED.enriched_at`,
				propertyID, dates[start:start+len(batch)], c.tempMax, c.tempMin, c.precipitation, c.weatherCode,
				c.isHoliday, c.holidayName, c.dayOfWeek, c.isWeekend, c.month, c.quarter, c.isoWeek, c.isoYear,
				c.season, c.daysToNextHoliday, now); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("upsert pricing features of %s: %w", propertyID, classify(err))
	}
	s.log.V(1).Info("Upserted pricing features", "property", propertyID, "rows", len(features))
	return nil
}

const pricingRowColumns = `date, price, occupancy, temp_max_c, temp_min_c, precipitation_mm, weather_code,
	is_holiday, holiday_name, day_of_week, is_weekend, month, quarter, iso_week, iso_year, season,
	days_to_next_holiday, enriched_at`

// ListPricingRows returns the property's days in date order; none for an unknown property.
func (s *Store) ListPricingRows(ctx context.Context, propertyID string) ([]PricingRow, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+pricingRowColumns+`
		FROM pricing_rows WHERE property_id = $1 ORDER BY date`, propertyID)
	if err != nil {
		return nil, fmt.Errorf("list pricing rows of %s: %w", propertyID, err)
	}
	out, err := pgx.CollectRows(rows, scanPricingRow)
	if err != nil {
		return nil, fmt.Errorf("list pricing rows of %s: %w", propertyID, err)
	}
	return out, nil
}

func scanPricingRow(row pgx.CollectableRow) (PricingRow, error) {
	var (
		r PricingRow
		f PricingFeatures
		// NULL on a day never enriched.
		isHoliday, isWeekend                        *bool
		holidayName, season                         *string
		dayOfWeek, month, quarter, isoWeek, isoYear *int
		enrichedAt                                  *time.Time
	)
	if err := row.Scan(&r.Date, &r.Price, &r.Occupancy, &f.TempMaxC, &f.TempMinC, &f.PrecipitationMM,
		&f.WeatherCode, &isHoliday, &holidayName, &dayOfWeek, &isWeekend, &month, &quarter, &isoWeek,
		&isoYear, &season, &f.DaysToNextHoliday, &enrichedAt); err != nil {
		return PricingRow{}, err
	}
	if enrichedAt == nil {
		return r, nil
	}
	// The enriched_complete constraint guarantees every calendar feature of an enriched day.
	f.Date, f.IsHoliday, f.HolidayName, f.IsWeekend = r.Date, *isHoliday, derefString(holidayName), *isWeekend
	f.DayOfWeek, f.Month, f.Quarter, f.ISOWeek, f.ISOYear = *dayOfWeek, *month, *quarter, *isoWeek, *isoYear
	f.Season = Season(*season)
	r.Features, r.EnrichedAt = &f, enrichedAt.UTC()
	return r, nil
}

// featureColumns holds a batch of features column by column, as unnest takes them.
type featureColumns struct {
	tempMax, tempMin, precipitation             []*float64
	weatherCode, daysToNextHoliday              []*int
	isHoliday, isWeekend                        []bool
	holidayName                                 []*string
	dayOfWeek, month, quarter, isoWeek, isoYear []int
	season                                      []string
}

func newFeatureColumns(n int) *featureColumns {
	return &featureColumns{
		tempMax: make([]*float64, 0, n), tempMin: make([]*float64, 0, n), precipitation: make([]*float64, 0, n),
		weatherCode: make([]*int, 0, n), daysToNextHoliday: make([]*int, 0, n),
		isHoliday: make([]bool, 0, n), isWeekend: make([]bool, 0, n), holidayName: make([]*string, 0, n),
		dayOfWeek: make([]int, 0, n), month: make([]int, 0, n), quarter: make([]int, 0, n),
		isoWeek: make([]int, 0, n), isoYear: make([]int, 0, n), season: make([]string, 0, n),
	}
}

func (c *featureColumns) add(f PricingFeatures) {
	c.tempMax = append(c.tempMax, f.TempMaxC)
	c.tempMin = append(c.tempMin, f.TempMinC)
	c.precipitation = append(c.precipitation, f.PrecipitationMM)
	c.weatherCode = append(c.weatherCode, f.WeatherCode)
	c.daysToNextHoliday = append(c.daysToNextHoliday, f.DaysToNextHoliday)
	c.isHoliday = append(c.isHoliday, f.IsHoliday)
	c.isWeekend = append(c.isWeekend, f.IsWeekend)
	c.holidayName = append(c.holidayName, nullIfEmpty(f.HolidayName))
	c.dayOfWeek = append(c.dayOfWeek, f.DayOfWeek)
	c.month = append(c.month, f.Month)
	c.quarter = append(c.quarter, f.Quarter)
	c.isoWeek = append(c.isoWeek, f.ISOWeek)
	c.isoYear = append(c.isoYear, f.ISOYear)
	c.season = append(c.season, string(f.Season))
}

// pgDate is t's calendar day as written in t's location. Sending a time.Time itself would not do:
// the simple protocol spells it as a UTC timestamp, which moves a midnight east of Greenwich to
// the day before.
func pgDate(t time.Time) pgtype.Date {
	return pgtype.Date{Time: time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC), Valid: true}
}

// pgDates returns the n days day(i) as dates, refusing a missing (zero) day and a day given twice:
// one statement cannot upsert a row twice, and a processor that produced a day twice has a bug
// worth seeing.
func pgDates(n int, day func(i int) time.Time) ([]pgtype.Date, error) {
	dates := make([]pgtype.Date, n)
	seen := make(map[time.Time]bool, n)
	for i := range dates {
		if day(i).IsZero() {
			return nil, invalidf("row %d has no date", i)
		}
		d := pgDate(day(i))
		if seen[d.Time] {
			return nil, invalidf("date %s given twice", d.Time.Format(time.DateOnly))
		}
		seen[d.Time] = true
		dates[i] = d
	}
	return dates, nil
}
