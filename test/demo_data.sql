-- test/demo_data.sql
--
-- Demo data for test/demo.sh: the classic layout of the original design.  A
-- batch job (Spark in the original) aggregated the archived tweets per user
-- location into batch_layer; a streaming job aggregated the tweets that came in
-- since then into speed_layer, whose columns carry Spark's default names
-- ("count(id)", ...).  The tweets are generated, deterministically (setseed):
-- 60,000 archived tweets over 220 cities, skewed so the first cities are the
-- busiest, and 2,500 recent ones, half of them over the 60 busiest cities
-- and half over cities 150 to 250: the speed layer updates many locations of
-- the batch layer, leaves others alone, and brings 30 it has never seen.
-- Some tweets have no location: both layers have a NULL location row, which
-- a refresh keeps as a key like any other.
--
-- Run it on any database: psql -X -v ON_ERROR_STOP=1 -f test/demo_data.sql

SET client_min_messages = warning;
DO $$ BEGIN PERFORM setseed(0.20151027); END $$;

DROP TABLE IF EXISTS batch_layer, speed_layer;

-- The cities users put in their profile, busiest first.
CREATE TEMP TABLE demo_city AS
SELECT ordinality::int AS id, name
FROM unnest(ARRAY[
	'London, England', 'New York, NY', 'Los Angeles, CA', 'Tokyo, Japan', 'Jakarta, Indonesia',
	'São Paulo, Brasil', 'Paris, France', 'Chicago, IL', 'Istanbul, Türkiye', 'Mexico City, Mexico',
	'Toronto, Ontario', 'Lagos, Nigeria', 'Madrid, Spain', 'Manila, Philippines', 'Mumbai, India',
	'Buenos Aires, Argentina', 'Seoul, South Korea', 'Sydney, Australia', 'Houston, TX', 'Atlanta, GA',
	'Rio de Janeiro, Brasil', 'Bangkok, Thailand', 'Washington, DC', 'Berlin, Germany', 'Dallas, TX',
	'San Francisco, CA', 'Boston, MA', 'Nairobi, Kenya', 'Kuala Lumpur, Malaysia', 'Johannesburg, South Africa',
	'Dublin, Ireland', 'Barcelona, Spain', 'Manchester, England', 'Melbourne, Australia', 'Singapore',
	'Miami, FL', 'Philadelphia, PA', 'Seattle, WA', 'Amsterdam, Netherlands', 'Rome, Italy',
	'New Delhi, India', 'Cairo, Egypt', 'Bogotá, Colombia', 'Lima, Peru', 'Santiago, Chile',
	'Caracas, Venezuela', 'Montréal, Québec', 'Vancouver, BC', 'Glasgow, Scotland', 'Osaka, Japan',
	'Bandung, Indonesia', 'Surabaya, Indonesia', 'Quezon City, Philippines', 'Riyadh, Saudi Arabia', 'Dubai, UAE',
	'Karachi, Pakistan', 'Lahore, Pakistan', 'Bengaluru, India', 'Chennai, India', 'Hyderabad, India',
	'Kolkata, India', 'Milan, Italy', 'Lisbon, Portugal', 'Stockholm, Sweden', 'Oslo, Norway',
	'Copenhagen, Denmark', 'Helsinki, Finland', 'Vienna, Austria', 'Zürich, Switzerland', 'Brussels, Belgium',
	'Warsaw, Poland', 'Prague, Czechia', 'Budapest, Hungary', 'Athens, Greece', 'Moscow, Russia',
	'Kyiv, Ukraine', 'Phoenix, AZ', 'San Diego, CA', 'Denver, CO', 'Austin, TX',
	'Las Vegas, NV', 'Detroit, MI', 'Minneapolis, MN', 'Portland, OR', 'Nashville, TN',
	'New Orleans, LA', 'Baltimore, MD', 'Charlotte, NC', 'Orlando, FL', 'Tampa, FL',
	'Birmingham, England', 'Liverpool, England', 'Leeds, England', 'Bristol, England', 'Edinburgh, Scotland',
	'Cardiff, Wales', 'Belfast, Northern Ireland', 'Calgary, Alberta', 'Ottawa, Ontario', 'Edmonton, Alberta',
	'Guadalajara, Mexico', 'Monterrey, Mexico', 'Medellín, Colombia', 'Quito, Ecuador', 'Montevideo, Uruguay',
	'Belo Horizonte, Brasil', 'Porto Alegre, Brasil', 'Recife, Brasil', 'Salvador, Brasil', 'Brasília, Brasil',
	'Accra, Ghana', 'Abuja, Nigeria', 'Kampala, Uganda', 'Addis Ababa, Ethiopia', 'Dar es Salaam, Tanzania',
	'Cape Town, South Africa', 'Durban, South Africa', 'Casablanca, Morocco', 'Tunis, Tunisia', 'Algiers, Algeria',
	'Beirut, Lebanon', 'Amman, Jordan', 'Tel Aviv, Israel', 'Doha, Qatar', 'Kuwait City, Kuwait',
	'Tehran, Iran', 'Baghdad, Iraq', 'Dhaka, Bangladesh', 'Colombo, Sri Lanka', 'Kathmandu, Nepal',
	'Hanoi, Vietnam', 'Ho Chi Minh City, Vietnam', 'Taipei, Taiwan', 'Hong Kong', 'Shanghai, China',
	'Beijing, China', 'Auckland, New Zealand', 'Wellington, New Zealand', 'Brisbane, Australia', 'Perth, Australia',
	'Adelaide, Australia', 'Munich, Germany', 'Hamburg, Germany', 'Cologne, Germany', 'Frankfurt, Germany',
	'Lyon, France', 'Marseille, France', 'Toulouse, France', 'Valencia, Spain', 'Seville, Spain',
	'Bilbao, Spain', 'Porto, Portugal', 'Naples, Italy', 'Turin, Italy', 'Florence, Italy',
	'Rotterdam, Netherlands', 'Antwerp, Belgium', 'Geneva, Switzerland', 'Kraków, Poland', 'Bucharest, Romania',
	'Sofia, Bulgaria', 'Belgrade, Serbia', 'Zagreb, Croatia', 'Ljubljana, Slovenia', 'Bratislava, Slovakia',
	'Vilnius, Lithuania', 'Riga, Latvia', 'Tallinn, Estonia', 'Reykjavík, Iceland', 'Saint Petersburg, Russia',
	'Minsk, Belarus', 'Tbilisi, Georgia', 'Yerevan, Armenia', 'Baku, Azerbaijan', 'Almaty, Kazakhstan',
	'Tashkent, Uzbekistan', 'Sacramento, CA', 'San Jose, CA', 'Oakland, CA', 'Salt Lake City, UT',
	'Kansas City, MO', 'St. Louis, MO', 'Cleveland, OH', 'Columbus, OH', 'Cincinnati, OH',
	'Pittsburgh, PA', 'Indianapolis, IN', 'Milwaukee, WI', 'Raleigh, NC', 'Richmond, VA',
	'Memphis, TN', 'Louisville, KY', 'Oklahoma City, OK', 'Albuquerque, NM', 'Tucson, AZ',
	'Honolulu, HI', 'Anchorage, AK', 'Boise, ID', 'Omaha, NE', 'Buffalo, NY',
	'Halifax, Nova Scotia', 'Winnipeg, Manitoba', 'Québec City, Québec', 'Victoria, BC', 'Regina, Saskatchewan',
	'San Juan, Puerto Rico', 'Havana, Cuba', 'Kingston, Jamaica', 'Santo Domingo, Dominican Republic', 'Panama City, Panama',
	'San José, Costa Rica', 'Guatemala City, Guatemala', 'La Paz, Bolivia', 'Asunción, Paraguay', 'Córdoba, Argentina',
	'Rosario, Argentina', 'Valparaíso, Chile', 'Cusco, Peru', 'Cali, Colombia', 'Cartagena, Colombia',
	'Kigali, Rwanda', 'Lusaka, Zambia', 'Harare, Zimbabwe', 'Maputo, Mozambique', 'Dakar, Senegal',
	'Abidjan, Côte d''Ivoire', 'Douala, Cameroon', 'Kinshasa, DR Congo', 'Luanda, Angola', 'Windhoek, Namibia',
	'Muscat, Oman', 'Manama, Bahrain', 'Jeddah, Saudi Arabia', 'Islamabad, Pakistan', 'Pune, India',
	'Ahmedabad, India', 'Jaipur, India', 'Chiang Mai, Thailand', 'Phnom Penh, Cambodia', 'Yangon, Myanmar',
	'Cebu City, Philippines', 'Davao City, Philippines', 'Yogyakarta, Indonesia', 'Medan, Indonesia', 'Denpasar, Bali',
	'Busan, South Korea', 'Sapporo, Japan', 'Fukuoka, Japan', 'Kyoto, Japan', 'Nagoya, Japan'
]) WITH ORDINALITY AS u(name, ordinality);

-- Tweets up to the last batch run.  A few users have no location (NULL).
CREATE TEMP TABLE demo_tweet_archive AS
SELECT t.id, c.name AS location, t.followers_count, t.favorite_count, t.retweet_count
FROM (SELECT g AS id,
			 CASE WHEN random() < 0.012 THEN NULL
				  ELSE 1 + floor(220 * random() ^ 2)::int END AS city,
			 floor(exp(random() * random() * 11))::bigint AS followers_count,
			 floor(40 * random() ^ 4)::bigint AS favorite_count,
			 floor(25 * random() ^ 6)::bigint AS retweet_count
	  FROM generate_series(1, 60000) AS g) AS t
LEFT JOIN demo_city AS c ON c.id = t.city
ORDER BY t.id;

-- Tweets since then: a different part of the world is awake.
CREATE TEMP TABLE demo_tweet_recent AS
SELECT t.id, c.name AS location, t.followers_count, t.favorite_count, t.retweet_count
FROM (SELECT 60000 + g AS id,
			 CASE WHEN random() < 0.015 THEN NULL
				  WHEN random() < 0.5 THEN 1 + floor(60 * random() ^ 2)::int
				  ELSE 150 + floor(101 * random())::int END AS city,
			 floor(exp(random() * random() * 11))::bigint AS followers_count,
			 floor(40 * random() ^ 4)::bigint AS favorite_count,
			 floor(25 * random() ^ 6)::bigint AS retweet_count
	  FROM generate_series(1, 2500) AS g) AS t
LEFT JOIN demo_city AS c ON c.id = t.city
ORDER BY t.id;

-- The batch layer: what the batch job wrote.
CREATE TABLE batch_layer (
	location			text,
	count_id			bigint,
	sum_followers_count bigint,
	sum_favorite_count	bigint,
	sum_retweet_count	bigint
);
INSERT INTO batch_layer
SELECT location, count(id), sum(followers_count), sum(favorite_count), sum(retweet_count)
FROM demo_tweet_archive
GROUP BY location
ORDER BY location;

-- The speed layer: what the streaming job wrote, with Spark's column names.
CREATE TABLE speed_layer (
	location				text,
	"count(id)"				bigint,
	"sum(followers_count)"	bigint,
	"sum(favorite_count)"	bigint,
	"sum(retweet_count)"	bigint
);
INSERT INTO speed_layer
SELECT location, count(id), sum(followers_count), sum(favorite_count), sum(retweet_count)
FROM demo_tweet_recent
GROUP BY location
ORDER BY location;

ANALYZE batch_layer, speed_layer;
RESET client_min_messages;
