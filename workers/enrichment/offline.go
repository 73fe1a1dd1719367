package enrichment

import (
	"fmt"
	"slices"
	"strings"

	"github.com/rickar/cal/v2"
	"github.com/rickar/cal/v2/ar"
	"github.com/rickar/cal/v2/at"
	"github.com/rickar/cal/v2/au"
	"github.com/rickar/cal/v2/be"
	"github.com/rickar/cal/v2/bg"
	"github.com/rickar/cal/v2/br"
	"github.com/rickar/cal/v2/ca"
	"github.com/rickar/cal/v2/ch"
	"github.com/rickar/cal/v2/cz"
	"github.com/rickar/cal/v2/de"
	"github.com/rickar/cal/v2/dk"
	"github.com/rickar/cal/v2/es"
	"github.com/rickar/cal/v2/fr"
	"github.com/rickar/cal/v2/gb"
	"github.com/rickar/cal/v2/gr"
	"github.com/rickar/cal/v2/hr"
	"github.com/rickar/cal/v2/ie"
	"github.com/rickar/cal/v2/it"
	"github.com/rickar/cal/v2/jp"
	"github.com/rickar/cal/v2/lt"
	"github.com/rickar/cal/v2/lv"
	"github.com/rickar/cal/v2/mw"
	"github.com/rickar/cal/v2/nc"
	"github.com/rickar/cal/v2/nl"
	"github.com/rickar/cal/v2/no"
	"github.com/rickar/cal/v2/nz"
	"github.com/rickar/cal/v2/pl"
	"github.com/rickar/cal/v2/ro"
	"github.com/rickar/cal/v2/ru"
	"github.com/rickar/cal/v2/se"
	"github.com/rickar/cal/v2/si"
	"github.com/rickar/cal/v2/sk"
	"github.com/rickar/cal/v2/ua"
	"github.com/rickar/cal/v2/us"
	"github.com/rickar/cal/v2/za"
)

// offlineCalendars maps ISO 3166-1 alpha-2 codes to the library's national holiday lists: every
// sub-package of github.com/rickar/cal/v2 that has one ("aa" is the library's shared
// definitions and "ecb" the European Central Bank's TARGET2 days, not countries). Regional
// lists (German Länder, Swiss cantons, US states' extras) are not used: a property knows its
// country, not its region.
var offlineCalendars = map[string][]*cal.Holiday{
	"AR": ar.Holidays,
	"AT": at.Holidays,
	"AU": auNational,
	"BE": be.Holidays,
	"BG": bg.Holidays,
	"BR": br.Holidays,
	"CA": ca.Holidays,
	"CH": ch.Holidays,
	"CZ": cz.Holidays,
	"DE": de.Holidays,
	"DK": dk.Holidays,
	"ES": es.Holidays,
	"FR": fr.Holidays,
	"GB": gb.Holidays,
	"GR": gr.Holidays,
	"HR": hr.Holidays,
	"IE": ie.Holidays,
	"IT": it.Holidays,
	"JP": jp.Holidays,
	"LT": lt.Holidays,
	"LV": lv.Holidays,
	"MW": mw.Holidays,
	"NC": nc.Holidays,
	"NL": nl.Holidays,
	"NO": no.Holidays,
	"NZ": nz.Holidays,
	"PL": pl.Holidays,
	"RO": ro.Holidays,
	"RU": ru.Holidays,
	"SE": se.Holidays,
	"SI": si.Holidays,
	"SK": sk.Holidays,
	"UA": ua.Holidays,
	"US": us.Holidays,
	"ZA": za.Holidays,
}

// auNational: the library has only per-state lists for Australia. These are the holidays
// every state and territory keeps (Anzac Day without a state's substitution rule).
var auNational = []*cal.Holiday{
	au.NewYear,
	au.AustraliaDay,
	au.GoodFriday,
	au.EasterMonday,
	au.AnzacDay,
	au.ChristmasDay,
	au.BoxingDay,
}

// countryAliases are common non-ISO spellings seen in property data.
var countryAliases = map[string]string{"UK": "GB", "EL": "GR"}

// NormalizeCountry upper-cases and trims a country code and maps the aliases UK→GB and
// EL→GR (the EU's code for Greece).
func NormalizeCountry(code string) string {
	c := strings.ToUpper(strings.TrimSpace(code))
	if alias, ok := countryAliases[c]; ok {
		return alias
	}
	return c
}

// OfflineCountries lists the ISO 3166-1 alpha-2 codes OfflineHolidays supports, sorted.
func OfflineCountries() []string {
	out := make([]string, 0, len(offlineCalendars))
	for c := range offlineCalendars {
		out = append(out, c)
	}
	slices.Sort(out)
	return out
}

// OfflineHolidays computes the public holidays of country in year with the offline library.
// It returns an error wrapping ErrUnsupportedCountry for a country without a national list.
//
// Kept: the library's public and bank holidays. Dropped: the days it marks as "other" (the
// Swedish eves, Julafton and the like, are customary but not days off by law). When a
// holiday's substitution rule moves it (GB's Christmas on a Saturday is observed on Monday),
// both the day itself and the observed day are holidays, the latter named "… (observed)":
// the day is a festival, the substitute a day off, and both move prices.
func OfflineHolidays(country string, year int) ([]Holiday, error) {
	c := NormalizeCountry(country)
	list, ok := offlineCalendars[c]
	if !ok {
		return nil, fmt.Errorf("offline holidays for %q: %w", country, ErrUnsupportedCountry)
	}
	var out []Holiday
	for _, h := range list {
		if h.Type == cal.ObservanceOther || h.Type == cal.ObservanceReligious {
			continue
		}
		actual, observed := h.Calc(year)
		if actual.IsZero() {
			continue // not observed that year (StartYear, EndYear, Except)
		}
		// Calc returns midnight in cal.DefaultLoc; only the calendar date matters.
		a := dayOf(actual)
		out = append(out, Holiday{Date: a.Time(), Name: h.Name})
		if o := dayOf(observed); !observed.IsZero() && o != a {
			out = append(out, Holiday{Date: o.Time(), Name: h.Name + " (observed)"})
		}
	}
	sortHolidays(out)
	return out, nil
}
