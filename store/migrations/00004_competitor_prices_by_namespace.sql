-- Competitor prices as the competitor processor (SerpApi's Google Hotels) reports them: keyed by
-- namespace as well as job id (job ids are CR names, unique only per namespace, as for
-- job_results), with the nightly rate and the stay's total, both nullable (a hotel listed without
-- a price is kept and left out of the statistics), and what a revenue manager compares besides
-- the price: rating, review count, hotel class, position.
--
-- No competitor processor wrote rows before this migration; rows the main app may have written
-- are kept under the namespace 'default'.

-- +goose Up
ALTER TABLE competitor_prices ADD COLUMN namespace text NOT NULL DEFAULT 'default';
ALTER TABLE competitor_prices ALTER COLUMN namespace DROP DEFAULT;
ALTER TABLE competitor_prices DROP CONSTRAINT competitor_prices_pkey;
ALTER TABLE competitor_prices
    ADD CONSTRAINT competitor_prices_pkey PRIMARY KEY (namespace, job_id, competitor_hotel_id);
ALTER TABLE competitor_prices
    ADD CONSTRAINT competitor_prices_namespace_length CHECK (char_length(namespace) BETWEEN 1 AND 63);

-- price is the lowest nightly rate (SerpApi's rate_per_night.extracted_lowest).
ALTER TABLE competitor_prices ALTER COLUMN price DROP NOT NULL;
ALTER TABLE competitor_prices
    ADD COLUMN total_price    numeric(12, 2),
    ADD COLUMN overall_rating double precision,
    ADD COLUMN reviews        integer,
    ADD COLUMN hotel_class    smallint,
    ADD COLUMN latitude       double precision,
    ADD COLUMN longitude      double precision,
    ADD CONSTRAINT competitor_prices_total_price_nonnegative CHECK (total_price >= 0),
    -- NaN compares greater than every number, so the ranges refuse NaN and infinities too.
    ADD CONSTRAINT competitor_prices_overall_rating_range CHECK (overall_rating BETWEEN 0 AND 5),
    ADD CONSTRAINT competitor_prices_reviews_nonnegative CHECK (reviews >= 0),
    ADD CONSTRAINT competitor_prices_hotel_class_range CHECK (hotel_class BETWEEN 1 AND 5),
    ADD CONSTRAINT competitor_prices_latitude_range CHECK (latitude BETWEEN -90 AND 90),
    ADD CONSTRAINT competitor_prices_longitude_range CHECK (longitude BETWEEN -180 AND 180),
    ADD CONSTRAINT competitor_prices_location_complete CHECK ((latitude IS NULL) = (longitude IS NULL));

-- +goose Down
DELETE FROM competitor_prices WHERE price IS NULL;
ALTER TABLE competitor_prices
    DROP COLUMN total_price,
    DROP COLUMN overall_rating,
    DROP COLUMN reviews,
    DROP COLUMN hotel_class,
    DROP COLUMN latitude,
    DROP COLUMN longitude;
ALTER TABLE competitor_prices ALTER COLUMN price SET NOT NULL;
-- Two namespaces may hold the same job id; the older key keeps one of them.
DELETE FROM competitor_prices c USING competitor_prices d
    WHERE c.job_id = d.job_id AND c.competitor_hotel_id = d.competitor_hotel_id AND c.namespace > d.namespace;
ALTER TABLE competitor_prices DROP CONSTRAINT competitor_prices_pkey;
ALTER TABLE competitor_prices DROP COLUMN namespace;
ALTER TABLE competitor_prices ADD CONSTRAINT competitor_prices_pkey PRIMARY KEY (job_id, competitor_hotel_id);
