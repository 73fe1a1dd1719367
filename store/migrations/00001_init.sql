-- The results schema: properties and their pricing rows (which enrichment fills with features),
-- competitor prices, analytics inputs and results, and the history of finished jobs.
--
-- Ids are text bounded like the CRD fields they come from (propertyId 128, userId 63, inputRef 128,
-- job id = CR name 253): the operator accepts any id the API server accepts, not only UUIDs.
-- Enumerations are CHECKed text, not enum types, so a later value is one constraint swap, not an
-- ALTER TYPE that cannot run in a transaction. Constraints are named so that an error says what
-- was wrong.

-- +goose Up
CREATE TABLE properties (
    id                text             NOT NULL,
    user_id           text             NOT NULL,
    latitude          double precision,
    longitude         double precision,
    country_code      text,
    enrichment_status text             NOT NULL DEFAULT 'pending',
    enriched_at       timestamptz,
    created_at        timestamptz      NOT NULL DEFAULT now(),
    updated_at        timestamptz      NOT NULL DEFAULT now(),
    CONSTRAINT properties_pkey PRIMARY KEY (id),
    CONSTRAINT properties_id_length CHECK (char_length(id) BETWEEN 1 AND 128),
    CONSTRAINT properties_user_id_length CHECK (char_length(user_id) BETWEEN 1 AND 63),
    -- NaN compares greater than every number, so these refuse NaN and infinities too.
    CONSTRAINT properties_latitude_range CHECK (latitude BETWEEN -90 AND 90),
    CONSTRAINT properties_longitude_range CHECK (longitude BETWEEN -180 AND 180),
    CONSTRAINT properties_location_complete CHECK ((latitude IS NULL) = (longitude IS NULL)),
    CONSTRAINT properties_country_code_format CHECK (country_code ~ '^[A-Z]{2}$'),
    CONSTRAINT properties_enrichment_status_valid
        CHECK (enrichment_status IN ('pending', 'running', 'completed', 'failed'))
);

-- The main app lists a user's properties, newest first.
CREATE INDEX properties_user_created_idx ON properties (user_id, created_at DESC);

-- One row per property and day. Price and occupancy come from the user's upload; the feature
-- columns from enrichment, which may also add days without a price (future days to forecast), so
-- both halves are nullable. The calendar features must agree with the date: a processor that
-- counts weekdays from Sunday = 0 fails loudly instead of storing shifted features.
CREATE TABLE pricing_rows (
    property_id          text             NOT NULL,
    date                 date             NOT NULL,
    price                numeric(12, 2),
    occupancy            double precision,
    temp_max_c           double precision,
    temp_min_c           double precision,
    precipitation_mm     double precision,
    weather_code         smallint,
    is_holiday           boolean,
    holiday_name         text,
    day_of_week          smallint,
    is_weekend           boolean,
    month                smallint,
    quarter              smallint,
    iso_week             smallint,
    iso_year             integer,
    season               text,
    days_to_next_holiday integer,
    enriched_at          timestamptz,
    -- The primary key also serves "a property's rows by date" and the cascade from properties.
    CONSTRAINT pricing_rows_pkey PRIMARY KEY (property_id, date),
    CONSTRAINT pricing_rows_property_fk FOREIGN KEY (property_id)
        REFERENCES properties (id) ON DELETE CASCADE,
    CONSTRAINT pricing_rows_price_nonnegative CHECK (price >= 0),
    -- Percent; a 0–1 ratio fits too, the range only refuses what is neither.
    CONSTRAINT pricing_rows_occupancy_range CHECK (occupancy BETWEEN 0 AND 100),
    CONSTRAINT pricing_rows_temp_max_range CHECK (temp_max_c BETWEEN -100 AND 100),
    CONSTRAINT pricing_rows_temp_min_range CHECK (temp_min_c BETWEEN -100 AND 100),
    CONSTRAINT pricing_rows_temp_order CHECK (temp_min_c <= temp_max_c),
    CONSTRAINT pricing_rows_precipitation_range CHECK (precipitation_mm BETWEEN 0 AND 2000),
    -- WMO weather interpretation code, as Open-Meteo reports it.
    CONSTRAINT pricing_rows_weather_code_range CHECK (weather_code BETWEEN 0 AND 99),
    CONSTRAINT pricing_rows_holiday_name_on_holiday CHECK (holiday_name IS NULL OR is_holiday),
    CONSTRAINT pricing_rows_day_of_week_matches_date CHECK (day_of_week = extract(isodow FROM date)),
    CONSTRAINT pricing_rows_month_matches_date CHECK (month = extract(month FROM date)),
    CONSTRAINT pricing_rows_quarter_matches_date CHECK (quarter = extract(quarter FROM date)),
    CONSTRAINT pricing_rows_iso_week_matches_date CHECK (iso_week = extract(week FROM date)),
    CONSTRAINT pricing_rows_iso_year_matches_date CHECK (iso_year = extract(isoyear FROM date)),
    -- Not derived from the date: seasons flip in the southern hemisphere.
    CONSTRAINT pricing_rows_season_valid CHECK (season IN ('winter', 'spring', 'summer', 'autumn')),
    CONSTRAINT pricing_rows_days_to_next_holiday_nonnegative CHECK (days_to_next_holiday >= 0),
    -- An enriched row has every calendar feature; weather and the next holiday may be unknown
    -- (beyond the forecast horizon, or no holiday ahead in the calendar).
    CONSTRAINT pricing_rows_enriched_complete CHECK (
        enriched_at IS NULL OR (
            is_holiday IS NOT NULL AND day_of_week IS NOT NULL AND is_weekend IS NOT NULL
            AND month IS NOT NULL AND quarter IS NOT NULL AND iso_week IS NOT NULL
            AND iso_year IS NOT NULL AND season IS NOT NULL))
);

-- One row per competitor job and hotel, so a re-run job overwrites its own rows.
CREATE TABLE competitor_prices (
    job_id              text          NOT NULL,
    competitor_hotel_id text          NOT NULL,
    property_id         text          NOT NULL,
    competitor_name     text          NOT NULL,
    check_in            date          NOT NULL,
    check_out           date          NOT NULL,
    adults              smallint      NOT NULL,
    price               numeric(12, 2) NOT NULL,
    currency            text          NOT NULL,
    fetched_at          timestamptz   NOT NULL,
    CONSTRAINT competitor_prices_pkey PRIMARY KEY (job_id, competitor_hotel_id),
    CONSTRAINT competitor_prices_property_fk FOREIGN KEY (property_id)
        REFERENCES properties (id) ON DELETE CASCADE,
    CONSTRAINT competitor_prices_job_id_length CHECK (char_length(job_id) BETWEEN 1 AND 253),
    CONSTRAINT competitor_prices_hotel_id_length
        CHECK (char_length(competitor_hotel_id) BETWEEN 1 AND 256),
    CONSTRAINT competitor_prices_name_length CHECK (char_length(competitor_name) <= 512),
    CONSTRAINT competitor_prices_stay_order CHECK (check_out > check_in),
    CONSTRAINT competitor_prices_adults_range CHECK (adults BETWEEN 1 AND 30),
    CONSTRAINT competitor_prices_price_nonnegative CHECK (price >= 0),
    CONSTRAINT competitor_prices_currency_format CHECK (currency ~ '^[A-Z]{3}$')
);

-- The main app asks "competitors' prices around this property for these nights, latest first".
CREATE INDEX competitor_prices_property_stay_idx
    ON competitor_prices (property_id, check_in, fetched_at DESC);

-- Input rows of an analytics request, written by the facade and named by the CR's inputRef:
-- large payloads stay out of etcd.
CREATE TABLE analytics_inputs (
    id          text        NOT NULL,
    property_id text        NOT NULL,
    user_id     text        NOT NULL,
    rows        jsonb       NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT analytics_inputs_pkey PRIMARY KEY (id),
    CONSTRAINT analytics_inputs_property_fk FOREIGN KEY (property_id)
        REFERENCES properties (id) ON DELETE CASCADE,
    CONSTRAINT analytics_inputs_id_length CHECK (char_length(id) BETWEEN 1 AND 128),
    CONSTRAINT analytics_inputs_user_id_length CHECK (char_length(user_id) BETWEEN 1 AND 63),
    CONSTRAINT analytics_inputs_rows_array CHECK (jsonb_typeof(rows) = 'array')
);

-- Serves the cascade from properties and "inputs of a property".
CREATE INDEX analytics_inputs_property_idx ON analytics_inputs (property_id, created_at DESC);

CREATE TABLE analytics_results (
    job_id        text        NOT NULL,
    property_id   text        NOT NULL,
    analysis_type text        NOT NULL,
    result        jsonb       NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT analytics_results_pkey PRIMARY KEY (job_id),
    CONSTRAINT analytics_results_property_fk FOREIGN KEY (property_id)
        REFERENCES properties (id) ON DELETE CASCADE,
    CONSTRAINT analytics_results_job_id_length CHECK (char_length(job_id) BETWEEN 1 AND 253),
    CONSTRAINT analytics_results_analysis_type_valid CHECK (
        analysis_type IN ('summary', 'weather-impact', 'demand-forecast', 'feature-importance'))
);

-- The main app asks "the latest summary of this property".
CREATE INDEX analytics_results_property_type_idx
    ON analytics_results (property_id, analysis_type, created_at DESC);

-- Finished jobs, served by the facade once a job's CR has expired. No foreign key to
-- properties: a job that failed because its property does not exist must still be recorded.
CREATE TABLE job_results (
    job_id      text        NOT NULL,
    queue       text        NOT NULL,
    namespace   text        NOT NULL,
    user_id     text        NOT NULL,
    property_id text        NOT NULL,
    status      text        NOT NULL,
    attempts    integer     NOT NULL,
    error       text,
    result      jsonb,
    created_at  timestamptz NOT NULL,
    finished_at timestamptz NOT NULL,
    CONSTRAINT job_results_pkey PRIMARY KEY (job_id),
    CONSTRAINT job_results_job_id_length CHECK (char_length(job_id) BETWEEN 1 AND 253),
    CONSTRAINT job_results_queue_valid CHECK (queue IN ('enrichment', 'competitor', 'analytics-heavy')),
    CONSTRAINT job_results_namespace_length CHECK (char_length(namespace) BETWEEN 1 AND 63),
    CONSTRAINT job_results_user_id_length CHECK (char_length(user_id) BETWEEN 1 AND 63),
    CONSTRAINT job_results_property_id_length CHECK (char_length(property_id) BETWEEN 1 AND 128),
    CONSTRAINT job_results_status_valid CHECK (status IN ('completed', 'failed')),
    CONSTRAINT job_results_attempts_nonnegative CHECK (attempts >= 0),
    CONSTRAINT job_results_error_only_on_failure CHECK (status = 'failed' OR error IS NULL)
);

-- GET /api/jobs: a user's jobs, newest first, optionally of one queue or status (the filters are
-- applied on this index's rows; a user has few enough jobs for that).
CREATE INDEX job_results_user_created_idx ON job_results (user_id, created_at DESC, job_id DESC);
-- Operations: the latest failures of a queue.
CREATE INDEX job_results_queue_status_idx ON job_results (queue, status, finished_at DESC);

-- +goose Down
DROP TABLE job_results;
DROP TABLE analytics_results;
DROP TABLE analytics_inputs;
DROP TABLE competitor_prices;
DROP TABLE pricing_rows;
DROP TABLE properties;
