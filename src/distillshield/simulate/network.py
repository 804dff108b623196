"""Real address space for the simulator: IPs whose country and ASN match what a persona claims to be.

Why this exists: the detection layer enriches every exchange's IP with geoip2fast (country and
ASN name), with hosting / VPN / Tor lists and with cloud-provider ranges.  If the simulator drew
random IPs, a "Stanford student" would geolocate to a Brazilian ISP and every detector would be
tested against noise.  So every address handed out here lies in a real, announced block whose
geoip2fast country and ASN name are the ones the persona intends: campus IPs really belong to a
university ASN, cloud IPs to AWS / GCP / Azure / ..., residential IPs to a consumer ISP of the
requested country, Tor IPs are real exit relays.

Where the data comes from
-------------------------
* ``geoip2fast`` ships MaxMind GeoLite2 country + ASN tables as pickled lists
  (``geoip2fast-asn.dat.gz`` for IPv4, ``geoip2fast-asn-ipv6.dat.gz`` for IPv4 + IPv6).  We read
  those files ourselves (gzip + pickle, the structure ``GeoIP2Fast`` itself unpacks) rather than
  through a ``GeoIP2Fast`` instance, because ``GeoIP2Fast`` keeps its tables in *module globals*:
  loading the IPv6 file in one instance silently replaces the tables of every other instance in
  the process, including the enrichment layer's.  Reading the file directly keeps the simulator
  from disturbing the detector and gives flat arrays we can enumerate by ASN name.
  The reader lives in :mod:`distillshield.enrich._geo`, shared with the enrichment layer, so
  simulator and detector see the same geography.  :meth:`AddressSpace.lookup` reproduces
  ``GeoIP2Fast.lookup`` (the tests check it against ``GeoIP2Fast`` itself, in a subprocess).
  Nothing is ever downloaded.
* Which ASNs count as cloud, hosting, residential, ... is curated below (``_CATALOGUE``), as
  data, by exact geoip2fast ASN name (geoip2fast has names, no AS numbers).
* Tor exits: geoip2fast has no Tor data, so ``_TOR_EXIT_DATA`` ships a snapshot of real exit
  relays (the blocks of the Tor Project's exit list that hold three or more exits).

A :class:`Network` is the intersection of an announced ASN block with one geoip2fast country
block, so every address inside it looks up to the same (country, ASN name).  See
docs/simulator-identity.md for the limitations.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final, Literal, get_args

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

# The geoip2fast reader is shared with the enrichment layer, so both see the same geography.
from distillshield.enrich._geo import GeoTable as _Table
from distillshield.enrich._geo import load_geo_table as _load_table

NetKind = Literal["cloud", "hosting", "residential", "mobile", "campus", "corporate", "vpn", "tor"]

#: Every kind, in declaration order.
NET_KINDS: Final[tuple[NetKind, ...]] = get_args(NetKind)

ObjArray = npt.NDArray[np.object_]


@dataclass(frozen=True)
class Network:
    """A real block of address space and what geoip2fast says about every address in it.

    ``cidr`` is an announced ASN block, or the part of one that geolocates to a single country
    (MaxMind splits some announcements between countries).
    """

    cidr: str
    asn_name: str
    country: str
    kind: NetKind


# ---------------------------------------------------------------------------------------------
# curated catalogue (data): which geoip2fast ASN names are which kind of network
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Provider:
    """One operator (possibly several ASN names) and its share of its kind's traffic.

    ``weight`` None means "in proportion to the square root of the operator's address space in
    the pool": big ISPs get more users than small ones, but not a hundred times more.  ``home``
    (when not empty) lists the only countries whose blocks count.
    """

    label: str
    asn_names: tuple[str, ...]
    weight: float | None = None
    home: tuple[str, ...] = ()  # countries served; blocks elsewhere (business / transit) are dropped


def _p(label: str, *asn_names: str, weight: float | None = None) -> _Provider:
    return _Provider(label, asn_names, weight)


def _home(country: str, *providers: _Provider) -> tuple[_Provider, ...]:
    """Providers that serve only ``country``.

    Consumer ISPs, carriers and universities announce a few blocks abroad (Verizon's business
    network in Europe, a university's research prefix at an exchange); those are not where their
    subscribers or students are, so they are left out of the pool.
    """
    return tuple(_Provider(p.label, p.asn_names, p.weight, (country,)) for p in providers)


_CATALOGUE: Final[Mapping[NetKind, tuple[_Provider, ...]]] = MappingProxyType(
    {
        # Public clouds.  Weights follow rough IaaS market share; the big three run regional
        # blocks in dozens of countries, which is what lets a campaign "be" in SG, JP or US.
        "cloud": (
            _p("AWS", "AMAZON-02", "AMAZON-AES", weight=0.30),
            _p("Microsoft Azure", "MICROSOFT-CORP-MSN-AS-BLOCK", weight=0.20),
            _p("Google Cloud", "GOOGLE-CLOUD-PLATFORM", weight=0.13),
            _p("Oracle Cloud", "ORACLE-BMC-31898", weight=0.04),
            _p("DigitalOcean", "DIGITALOCEAN-ASN", weight=0.06),
            _p("Linode / Akamai Connected Cloud", "Akamai Connected Cloud", weight=0.03),
            _p("Hetzner", "Hetzner Online GmbH", weight=0.06),
            _p("OVHcloud", "OVH SAS", weight=0.05),
            _p(
                "Alibaba Cloud",
                "Hangzhou Alibaba Advertising Co.,Ltd.",
                "Alibaba US Technology Co., Ltd.",
                "Alibaba Cloud Singapore Private Limited",
                weight=0.06,
            ),
            _p(
                "Tencent Cloud",
                "Shenzhen Tencent Computer Systems Company Limited",
                "Tencent Building, Kejizhongyi Avenue",
                weight=0.05,
            ),
            _p("Huawei Cloud", "HUAWEI CLOUDS", "Huawei Cloud Service data center", weight=0.02),
        ),
        # Smaller VPS / dedicated-server providers: what proxy resellers and scrapers rent.
        "hosting": (
            _p("M247", "M247 Europe SRL", "M247 UK Ltd", "M247 Ltd", weight=0.10),
            _p("Contabo", "Contabo GmbH", "Contabo Asia Private Limited", weight=0.08),
            _p("Vultr (Choopa)", "AS-CHOOPA", weight=0.10),
            _p(
                "Leaseweb",
                "LeaseWeb Netherlands B.V.",
                "Leaseweb Deutschland GmbH",
                "Leaseweb Uk Limited",
                "Leaseweb Asia Pacific pte. ltd.",
                "Leaseweb Japan K.K.",
                "LEASEWEB AUSTRALIA PTY LIMITED",
                "LEASEWEB-USA-LAX",
                "LEASEWEB-USA-SFO",
                "LEASEWEB-USA-WDC",
                "LEASEWEB-USA-SEA",
                "LEASEWEB-USA-CHI",
                "LEASEWEB-USA-NYC",
                "LEASEWEB-USA-PHX",
                "LEASEWEB-USA-DAL",
                "LEASEWEB-USA-MIA",
                weight=0.08,
            ),
            _p("ColoCrossing", "AS-COLOCROSSING", weight=0.06),
            _p("QuadraNet", "ASN-QUADRANET-GLOBAL", weight=0.05),
            _p("Hostinger", "Hostinger International Limited", weight=0.05),
            _p("HostRoyale", "HostRoyale Technologies Pvt Ltd", weight=0.05),
            _p("Stark Industries", "Stark Industries Solutions Ltd", weight=0.05),
            _p("IONOS", "IONOS SE", weight=0.04),
            _p("Hivelocity", "Hivelocity LLC", weight=0.04),
            _p("Scaleway", "Scaleway S.a.s.", weight=0.04),
            _p("netcup", "netcup GmbH", weight=0.03),
            _p("Selectel", "OOO Network of data-centers Selectel", weight=0.04),
            _p("Timeweb", "TimeWeb Ltd.", weight=0.02),
            _p("G-Core Labs", "G-Core Labs S.A.", weight=0.03),
            _p("Kamatera", "Kamatera Inc", "KAMATERA", weight=0.02),
            _p("BuyVM (FranTech)", "PONYNET", weight=0.02),
            _p("Clouvider", "Clouvider Limited", weight=0.03),
            _p("xTom", "xTom", "xTom GmbH", "xTom Pty Ltd", weight=0.02),
        ),
        # Consumer ISPs, per country.  Residential-proxy networks ("hydra" resellers) exit
        # through exactly these.  Weighted by address space (sqrt), so the incumbent dominates.
        "residential": (
            *_home(
                "US",
                _p("Comcast", "COMCAST-7922"),
                _p(
                    "Charter / Spectrum",
                    "CHARTER-20115",
                    "TWC-10796-MIDWEST",
                    "TWC-20001-PACWEST",
                    "TWC-11427-TEXAS",
                    "TWC-11351-NORTHEAST",
                    "TWC-11426-CAROLINAS",
                    "TWC-12271-NYC",
                    "TWC-7843-BB",
                ),
                _p("AT&T", "ATT-INTERNET4"),
                _p("Verizon Fios", "UUNET"),
                _p("CenturyLink / Lumen", "CENTURYLINK-US-LEGACY-QWEST"),
                _p("Cox", "ASN-CXA-ALL-CCI-22773-RDC"),
                _p("Frontier", "FRONTIER-FRTR"),
                _p("Optimum (Suddenlink)", "SUDDENLINK-COMMUNICATIONS"),
                _p("WOW!", "WOW-INTERNET"),
                _p("RCN", "RCN-AS"),
                _p("Google Fiber", "GOOGLE-FIBER"),
                _p("Windstream", "WINDSTREAM"),
            ),
            *_home(
                "CA",
                _p("Bell Canada", "BACOM"),
                _p("Rogers", "ROGERS-COMMUNICATIONS"),
                _p("Shaw", "SHAW"),
                _p("TELUS", "TELUS Communications"),
                _p("Videotron", "VIDEOTRON"),
                _p("Cogeco", "COGECOWAVE"),
                _p("TekSavvy", "TEKSAVVY"),
            ),
            *_home(
                "MX",
                _p("Telmex", "UNINET"),
                _p("Megacable", "Mega Cable, S.A. de C.V."),
                _p("Totalplay", "TOTAL PLAY TELECOMUNICACIONES SA DE CV"),
                _p("izzi", "Cablemas Telecomunicaciones SA de CV"),
            ),
            *_home(
                "BR",
                _p("Vivo", "TELEFONICA BRASIL S.A"),
                _p("Claro Brasil", "Claro NXT Telecomunicacoes Ltda", "CLARO S.A."),
                _p("Oi (V.tal)", "V tal"),
                _p("Algar", "ALGAR TELECOM SA"),
            ),
            *_home(
                "AR",
                _p("Telecom Argentina", "Telecom Argentina S.A."),
                _p("Movistar", "Telefonica de Argentina"),
            ),
            *_home(
                "CO",
                _p("Movistar Colombia", "COLOMBIA TELECOMUNICACIONES S.A. ESP"),
                _p("Claro Colombia", "Telmex Colombia S.A."),
                _p("UNE (EPM)", "EPM Telecomunicaciones S.A. E.S.P."),
            ),
            *_home("CL", _p("Movistar Chile", "TELEFONICA CHILE S.A."), _p("VTR", "VTR BANDA ANCHA S.A.")),
            *_home(
                "GB",
                _p("BT", "British Telecommunications PLC"),
                _p("Virgin Media", "Virgin Media"),
                _p("Sky", "Sky UK Limited"),
                _p("TalkTalk", "TalkTalk"),
            ),
            *_home("IE", _p("eir", "Eir Broadband"), _p("Vodafone Ireland", "Vodafone Ireland Limited")),
            *_home(
                "BE",
                _p("Proximus", "Proximus NV"),
                _p("Telenet", "Telenet BV"),
                _p("VOO", "VOO S.A."),
            ),
            *_home(
                "AT", _p("A1 Telekom Austria", "Telekom Austria"), _p("LIWEST", "LIWEST Kabelmedien GmbH")
            ),
            *_home(
                "DE",
                _p("Deutsche Telekom", "Deutsche Telekom AG"),
                _p("Vodafone DE", "Vodafone GmbH"),
                _p("1&1 Versatel", "1&1 Versatel Deutschland GmbH"),
                _p("EWE", "EWE-Tel GmbH"),
                _p("M-net", "M-net Telekommunikations GmbH"),
            ),
            *_home(
                "FR",
                _p("Orange", "Orange"),
                _p("SFR", "Societe Francaise Du Radiotelephone - SFR SA"),
                _p("Free", "Free SAS"),
                _p("Bouygues", "Bouygues Telecom SA"),
            ),
            *_home(
                "NL",
                _p("KPN", "KPN B.V."),
                _p("VodafoneZiggo", "Vodafone Libertel B.V."),
                _p("DELTA Fiber", "DELTA Fiber Nederland B.V."),
            ),
            *_home(
                "ES",
                _p("Movistar", "Telefonica De Espana S.a.u."),
                _p("Orange Spain", "Orange Espagne SA"),
                _p("Vodafone Ono", "Vodafone Ono, S.A."),
            ),
            *_home(
                "IT",
                _p("TIM", "Telecom Italia"),
                _p("WindTre", "Wind Tre S.p.A."),
                _p("Fastweb", "Fastweb"),
                _p("Tiscali", "Tiscali SpA"),
            ),
            *_home(
                "PL",
                _p("Orange Polska", "Orange Polska Spolka Akcyjna"),
                _p("Netia", "Netia SA"),
                _p("Vectra", "Vectra S.A."),
            ),
            *_home(
                "SE",
                _p("Telia", "Telia Company AB"),
                _p("Tele2", "Tele2 SWIPnet"),
                _p("Bahnhof", "Bahnhof AB"),
            ),
            *_home("CH", _p("Swisscom", "Bluewin"), _p("Sunrise", "Sunrise GmbH")),
            *_home("CZ", _p("O2 Czech", "O2 Czech Republic, a.s.")),
            *_home(
                "RU",
                _p("Rostelecom", "Rostelecom"),
                _p("ER-Telecom", "JSC ER-Telecom Holding"),
                _p("MGTS", "PJSC Moscow city telephone network"),
            ),
            *_home("UA", _p("Ukrtelecom", "JSC Ukrtelecom"), _p("Lanet", "Lanet Network Ltd")),
            *_home(
                "TR",
                _p("Turk Telekom", "Turk Telekom"),
                _p("Superonline", "Superonline Iletisim Hizmetleri A.S."),
                _p("Vodafone Net", "Vodafone Net Iletisim Hizmetler AS"),
            ),
            *_home(
                "IN",
                _p("Airtel Broadband", "Bharti Airtel Ltd., Telemedia Services", "BHARTI Airtel Ltd."),
                _p("BSNL", "National Internet Backbone"),
                _p("Hathway", "Hathway IP Over Cable Internet"),
                _p(
                    "ACT Fibernet",
                    "Atria Convergence Technologies pvt ltd",
                    "Atria Convergence Technologies Pvt. Ltd. Broadband Internet Service Provider INDIA",
                ),
                _p("MTNL", "Mahanagar Telephone Nigam Limited"),
            ),
            *_home("PK", _p("PTCL", "Pakistan Telecommunication Company Limited")),
            *_home(
                "ID",
                _p("Telkom Indonesia", "PT Telekomunikasi Indonesia"),
                _p("First Media", "Linknet-Fastnet ASN"),
                _p("Biznet", "BIZNET NETWORKS"),
            ),
            *_home(
                "VN",
                _p("VNPT", "VNPT Corp"),
                _p("Viettel", "Viettel Group"),
                _p("FPT", "FPT Telecom Company"),
            ),
            *_home(
                "TH",
                _p("True Online", "True Online"),
                _p("TOT", "TOT Public Company Limited"),
                _p("3BB", "JasTel Network International Gateway"),
                _p("AIS Fibre", "AIS Fibre"),
            ),
            *_home(
                "MY",
                _p("TM Unifi", "TM TECHNOLOGY SERVICES SDN. BHD."),
                _p(
                    "TIME dotCom",
                    "TIME dotCom Berhad No. 14, Jalan Majistret U126 Hicom Glenmarie "
                    "Industrial Park 40150 Shah Al",
                ),
            ),
            *_home(
                "PH",
                _p("PLDT", "Philippine Long Distance Telephone Company"),
                _p("Converge", "Converge ICT Solutions Inc."),
            ),
            *_home(
                "SG",
                _p("Singtel", "Singtel Fibre Broadband", "SingNet"),
                _p("StarHub", "Starhub Ltd", "StarHub Ltd"),
                _p("M1 fibre", "M1 NET LTD"),
            ),
            *_home(
                "HK",
                _p("HKT", "HKT Limited"),
                _p("HKBN", "Hong Kong Broadband Network Ltd."),
                _p("HGC", "HGC Global Communications Limited"),
                _p("i-Cable", "HK Cable TV Ltd"),
            ),
            *_home(
                "TW",
                _p("HiNet (Chunghwa)", "Data Communication Business Group"),
                _p("Taiwan Fixed Network", "Taiwan Fixed Network, Telco and Network Service Provider."),
                _p("Digital United", "Digital United Inc."),
            ),
            *_home(
                "CN",
                _p("China Telecom (CHINANET)", "Chinanet"),
                _p("China Unicom", "CHINA UNICOM China169 Backbone", "China Unicom Beijing Province Network"),
            ),
            *_home(
                "JP",
                _p("NTT OCN", "NTT Communications Corporation"),
                _p("SoftBank", "SoftBank Corp."),
                _p("KDDI (au Hikari)", "KDDI CORPORATION"),
                _p("J:COM", "JCOM Co., Ltd."),
                _p("So-net / NURO", "Sony Network Communications Inc."),
                _p("BIGLOBE", "BIGLOBE Inc."),
                _p("OPTAGE", "OPTAGE Inc."),
            ),
            *_home(
                "KR",
                _p("KT", "Korea Telecom"),
                _p("SK Broadband", "SK Broadband Co Ltd"),
                _p("LG U+", "LG POWERCOMM"),
                _p("LG HelloVision", "LG HelloVision Corp."),
            ),
            *_home(
                "AU",
                _p("Telstra", "Telstra Limited"),
                _p("TPG", "TPG Telecom Limited"),
                _p("Optus", "SingTel Optus Pty Ltd"),
                _p("Aussie Broadband", "Aussie Broadband"),
                _p("Internode", "Internode Pty Ltd"),
            ),
            *_home(
                "NZ",
                _p("Spark", "Spark New Zealand Trading Ltd."),
                _p("One NZ", "One New Zealand Group Limited"),
            ),
            *_home(
                "ZA", _p("Telkom", "Telkom-Internet"), _p("Afrihost", "Afrihost"), _p("Vox", "Vox-Telecom")
            ),
            *_home("NG", _p("Spectranet", "Spectranet"), _p("ipNX", "IPNXng")),
            *_home("KE", _p("Zuku (Wananchi)", "WANANCHI")),
            *_home("EG", _p("TE Data", "TE Data"), _p("LINKdotNET", "LINKdotNET")),
            *_home("SA", _p("STC", "Saudi Telecom Company JSC")),
            *_home(
                "AE",
                _p("Etisalat", "Emirates Telecommunications Group Company (etisalat Group) Pjsc"),
                _p("du", "Emirates Integrated Telecommunications Company PJSC"),
            ),
            *_home(
                "IL",
                _p("Bezeq", "Bezeq International Ltd."),
                _p("HOT", "Hot-Net internet services Ltd."),
                _p("Partner", "Partner Communications Ltd."),
            ),
        ),
        # Mobile carriers: carrier-grade NAT, many users per address, frequent address changes.
        "mobile": (
            *_home(
                "US",
                _p("T-Mobile US", "T-MOBILE-AS21928"),
                _p("Verizon Wireless", "CELLCO-PART", "CELLCO"),
                _p("AT&T Mobility", "ATT-MOBILITY-LLC-AS20057"),
                _p("UScellular", "USCC-ASN"),
            ),
            # Canadian, Swiss, Israeli and Emirati carriers run fixed and mobile in one ASN.
            *_home(
                "CA",
                _p("Rogers Wireless", "ROGERS-COMMUNICATIONS"),
                _p("Bell Mobility", "BACOM"),
                _p("TELUS Mobility", "TELUS Communications"),
            ),
            *_home("CH", _p("Swisscom Mobile", "Bluewin")),
            *_home("IL", _p("Partner", "Partner Communications Ltd.")),
            *_home("AE", _p("Etisalat", "Emirates Telecommunications Group Company (etisalat Group) Pjsc")),
            *_home("KE", _p("Safaricom", "SAFARICOM-LIMITED", "Safaricom")),
            *_home(
                "GB",
                _p("EE", "EE Limited"),
                _p("Vodafone UK", "Vodafone Limited"),
                _p("O2 UK", "Telefonica O2 UK"),
            ),
            *_home("DE", _p("O2 Germany", "Telefonica Germany")),
            *_home("FR", _p("Free Mobile", "Free Mobile SAS")),
            *_home("NL", _p("Odido", "Odido Netherlands B.V.")),
            *_home("ES", _p("Vodafone Spain", "Vodafone Spain")),
            *_home("IT", _p("Vodafone Italia", "Vodafone Italia S.p.A.")),
            *_home(
                "PL",
                _p("T-Mobile Polska", "T-Mobile Polska S.A."),
                _p("Play", "Play"),
                _p("Plus", "Polkomtel Sp. z o.o."),
            ),
            *_home("SE", _p("Tre", "Hi3G Access AB")),
            *_home("AT", _p("Magenta", "T-Mobile Austria GmbH"), _p("Drei", "Hutchison Drei Austria GmbH")),
            *_home("CZ", _p("T-Mobile CZ", "T-Mobile Czech Republic a.s.")),
            *_home("RU", _p("Beeline", "PVimpelCom"), _p("MegaFon", "PJSC MegaFon"), _p("MTS", "MTS PJSC")),
            *_home(
                "UA",
                _p("Kyivstar", "Kyivstar PJSC"),
                _p("Vodafone UA", "PrJSC VF UKRAINE"),
                _p("lifecell", "Limited Liability Company lifecell"),
            ),
            *_home(
                "TR",
                _p("Turkcell", "Turkcell Iletisim Hizmetleri A.s."),
                _p("Turk Telekom Mobil", "TT Mobil Iletisim Hizmetleri A.S"),
                _p("Vodafone TR", "Vodafone Telekomunikasyon A.S."),
            ),
            *_home(
                "IN",
                _p("Reliance Jio", "Reliance Jio Infocomm Limited"),
                _p("Airtel Mobile", "Bharti Airtel Ltd. AS for GPRS Service"),
                _p("Vi (Vodafone Idea)", "Vodafone Idea Ltd"),
            ),
            *_home(
                "ID",
                _p("Telkomsel", "PT. Telekomunikasi Selular"),
                _p("Indosat", "INDOSAT Internet Network Provider"),
                _p("XL Axiata", "PT XL Axiata"),
            ),
            *_home("VN", _p("MobiFone", "MOBIFONE Corporation")),
            *_home(
                "MY",
                _p("Celcom", "Celcom Axiata Berhad"),
                _p("Digi", "DiGi Telecommunications Sdn. Bhd."),
                _p("Maxis", "Binariang Berhad"),
            ),
            *_home(
                "PH",
                _p("Globe", "Globe Telecom Inc.", "Globe Telecoms"),
                _p("Smart", "Smart Broadband, Inc."),
                _p("DITO", "DITO TELECOMMUNITY CORP."),
            ),
            *_home(
                "SG",
                _p("M1", "MobileOne Ltd. MobileInternet Service Provider Singapore"),
                _p("Singtel Mobile", "SINGTEL MOBILE INTERNET SERVICE PROVIDER Singapore"),
            ),
            *_home("HK", _p("SmarTone", "SmarTone Mobile Communications Ltd")),
            *_home(
                "TW",
                _p("Far EasTone", "Far EastTone Telecommunication Co., Ltd."),
                _p("Chunghwa Mobile", "Mobile Business Group"),
                _p("Taiwan Mobile", "Taiwan Mobile Co., Ltd."),
            ),
            *_home(
                "CN",
                _p(
                    "China Mobile",
                    "China Mobile Communications Group Co., Ltd.",
                    "China Mobile communications corporation",
                ),
            ),
            *_home(
                "JP",
                _p("NTT Docomo", "NTT DOCOMO, INC."),
                _p("Rakuten Mobile", "Rakuten Mobile Network, Inc."),
            ),
            *_home("KR", _p("SK Telecom", "SK Telecom"), _p("LG U+ mobile", "LGTELECOM")),
            *_home("AU", _p("Vodafone AU", "Vodafone Australia Pty Ltd")),
            *_home("NZ", _p("2degrees", "Two Degrees Mobile Limited")),
            *_home("ZA", _p("Vodacom", "VODACOM"), _p("Cell C", "CELL-C")),
            *_home(
                "NG",
                _p("MTN Nigeria", "MTN NIGERIA Communication limited"),
                _p("Airtel Nigeria", "Celtel Nigeria Limited t.a ZAIN"),
            ),
            *_home("EG", _p("Orange Egypt", "MOBINIL"), _p("Vodafone Egypt", "Vodafone-EG")),
            *_home("SA", _p("Mobily", "Etihad Etisalat, a joint stock company")),
            *_home("BR", _p("TIM Brasil", "TIM SA")),
            *_home(
                "MX",
                _p("Telcel", "RadioMovil Dipsa, S.A. de C.V."),
                _p("AT&T Mexico", "AT&T COMUNICACIONES DIGITALES S DE RL"),
            ),
            *_home(
                "CO",
                _p("Claro Colombia", "COMUNICACION CELULAR S.A. COMCEL S.A."),
                _p("Tigo", "Colombia Movil"),
            ),
            *_home("AR", _p("Movistar AR", "Telefonica Moviles Argentina S.A. Movistar Argentina")),
            *_home("CL", _p("Entel", "Entel PCS Telecomunicaciones S.A.")),
        ),
        # Universities and national research & education networks (an NREN such as Jisc, DFN,
        # SWITCH or CERNET is what Oxford, TUM, ETH or Tsinghua traffic geolocates to).
        "campus": (
            *_home(
                "US",
                _p("Stanford", "STANFORD"),
                _p("MIT", "MIT-GATEWAYS"),
                _p("UC Berkeley", "UCB"),
                _p("UCLA", "UCLA"),
                _p("UC San Diego", "UCSD"),
                _p("UC Irvine", "UCINET-AS"),
                _p("UC Davis", "UCDAVIS-CORE"),
                _p("UC Santa Barbara", "UCSB-NET-AS"),
                _p("Harvard", "HARVARD-UNIV"),
                _p("Carnegie Mellon", "CMU-ROUTER"),
                _p("Princeton", "PRINCETON-AS"),
                _p("Yale", "YALE-AS"),
                _p("Columbia", "COLUMBIA-GW"),
                _p("Cornell", "CORNELL"),
                _p("Michigan", "UMICH-AS-5"),
                _p("UIUC", "UIUC"),
                _p("UT Austin", "UTEXAS"),
                _p("Georgia Tech", "GEORGIA-TECH"),
                _p("Purdue", "PURDUE"),
                _p("Wisconsin", "WISC-MADISON-AS"),
                _p("U Washington", "WASHINGTON-AS"),
                _p("UPenn", "UPENN"),
                _p("NYU", "NYU-DOMAIN"),
                _p("Johns Hopkins", "JHU"),
                _p("Duke", "DUKE-INTERCHANGE"),
                _p("Brown", "BROWN"),
                _p("Ohio State", "OSUNET-AS"),
                _p("CUNY", "CITY-UNIVERSITY-OF-NEW-YORK"),
                _p("Cal State", "CSUNET-NW"),
            ),
            *_home(
                "CA",
                _p("Toronto", "UTORONTO-AS"),
                _p("UBC", "UBC"),
                _p("McGill", "MCGILL-AS"),
                _p("Waterloo", "UWATERLOO"),
            ),
            *_home(
                "GB",
                _p("Jisc / JANET (Oxford, Cambridge, Imperial, UCL, ...)", "Jisc Services Limited"),
                _p("Queen Mary London", "Queen Mary and Westfield College, University of London"),
            ),
            *_home(
                "DE",
                _p(
                    "DFN (German universities)", "Verein zur Foerderung eines Deutschen Forschungsnetzes e.V."
                ),
                _p("TU Munich", "Technical University of Munich"),
                _p("RWTH Aachen", "RWTH Aachen University"),
                _p("KIT", "Karlsruhe Institute of Technology"),
                _p("Stuttgart", "Universitaet Stuttgart"),
            ),
            *_home("CH", _p("SWITCH (ETH, EPFL, Swiss universities)", "SWITCH")),
            *_home("FR", _p("RENATER", "Renater")),
            *_home("NL", _p("SURF", "SURF B.V.")),
            *_home("IT", _p("GARR", "Consortium GARR")),
            *_home("ES", _p("CSUC (Catalonia)", "Consorci de Serveis Universitaris de Catalunya")),
            *_home(
                "SE",
                _p("SUNET", "Vetenskapsradet / SUNET"),
                _p("Chalmers", "Chalmers University of Technology"),
            ),
            *_home(
                "DK",
                _p(
                    "Forskningsnettet",
                    "FSKNET-DK Forskningsnettet - Danish network for Research and Education",
                ),
            ),
            *_home("AT", _p("ACOnet", "ACONET"), _p("TU Wien", "Technische Universitat Wien")),
            *_home("CZ", _p("CESNET", "CESNET z.s.p.o.")),
            *_home("BE", _p("Belnet", "BELNET")),
            *_home("IE", _p("HEAnet", "HEAnet CLG")),
            *_home(
                "PL",
                _p("NASK / PIONIER", "Naukowa I Akademicka Siec Komputerowa - Panstwowy Instytut Badawczy"),
            ),
            *_home("TR", _p("ULAKBIM", "National Academic Network and Information Center")),
            *_home("IL", _p("IUCC", "Israel InterUniversity Computation Center")),
            *_home(
                "CN",
                _p("CERNET (Tsinghua, Peking, SJTU, ...)", "China Education and Research Network Center"),
                _p(
                    "CSTNET (Chinese Academy of Sciences)",
                    "Computer Network Information Center of Chinese Academy of Sciences CNIC-CAS",
                ),
            ),
            *_home(
                "JP",
                _p(
                    "SINET",
                    "Research Organization of Information and Systems, National Institute of Informatics",
                ),
                _p("U Tokyo", "The University of Tokyo"),
                _p("Kyoto", "Kyoto University"),
                _p("Osaka", "Osaka University"),
                _p("Keio", "Keio University"),
            ),
            *_home(
                "KR",
                _p("Seoul National", "Seoul National University"),
                _p("KAIST", "Korea Advanced Institute of Science and Technology"),
                _p("KREONET (KISTI)", "KISTI"),
            ),
            *_home(
                "TW",
                _p("TANet", "Taiwan Academic Network TANet Information Center"),
                _p("National Taiwan University", "National Taiwan University"),
            ),
            *_home(
                "HK",
                _p("HKU", "The University of Hong Kong"),
                _p("CUHK", "The Chinese University of Hong Kong"),
                _p("HKUST", "Hong Kong University of Science and Technology"),
            ),
            *_home(
                "SG", _p("NUS", "NUS Information Technology"), _p("NTU", "Nanyang Technological University")
            ),
            *_home("IN", _p("ERNET (IITs, IISc, ...)", "Education and Research Network")),
            *_home(
                "AU",
                _p("AARNet", "Australian Academic and Research Network AARNet"),
                _p("Melbourne", "The University of Melbourne, Melbourne, Victoria"),
                _p("Monash", "Monash University"),
                _p("UNSW", "University of New South Wales"),
            ),
            *_home("NZ", _p("Auckland", "The University of Auckland")),
            *_home(
                "BR",
                _p("RNP", "Rede Nacional de Ensino e Pesquisa"),
                _p("USP", "UNIVERSIDADE DE SAO PAULO"),
                _p("UNICAMP", "UNIVERSIDADE ESTADUAL DE CAMPINAS"),
            ),
            *_home("MX", _p("UNAM", "Universidad Nacional Autonoma de Mexico")),
            *_home("CL", _p("REUNA", "Red Universitaria Nacional")),
            *_home("ZA", _p("TENET", "TENET-1")),
            *_home("KE", _p("KENET", "Kenya Education Network")),
            *_home("TH", _p("Chulalongkorn", "Chulalongkorn University")),
        ),
        # Enterprises with their own ASN (corporate VPN egress and office NAT), plus the
        # security-service-edge clouds (Zscaler, Netskope) through which many enterprises now
        # egress: hundreds of employees behind a handful of addresses.
        "corporate": (
            _p("Apple", "APPLE-ENGINEERING"),
            _p("Oracle (corporate)", "ORACLE-ASNBLOCK-ASN"),
            _p("IBM", "IBMWATSON-AS"),
            _p("Cisco", "CISCOSYSTEMS"),
            _p("Salesforce", "SALESFORCE"),
            _p("HP", "HPINC"),
            _p("Dell", "DELL-BLK"),
            _p("Intel", "INTEL-SC-AS"),
            _p("SAP", "SAP SE"),
            _p("Siemens", "SIEMENS-PLM"),
            _p("Ericsson", "ERI-AS"),
            _p("Nokia", "Nokia Solutions and Networks Oy"),
            _p("Mercedes-Benz", "Mercedes-Benz Group AG"),
            _p("Bosch", "Robert Bosch Gesellschaft mit Beschraenkter Haftung"),
            _p("Airbus", "AIRBUS SAS"),
            _p("Boeing", "BOEING196"),
            _p("Toyota", "TOYOTA SYSTEMS CORPORATION"),
            _p("Fujitsu", "FUJITSU LIMITED"),
            _p("Samsung SDS", "SamsungSDS Inc."),
            _p("Eli Lilly", "LILLY-AS"),
            _p("Pfizer", "PFIZERNET"),
            _p("Roche", "La Roche Ltd."),
            _p("Merck KGaA", "Merck KGaA"),
            _p("Shell", "SHELL-3917 Shell Information Technology International B.V."),
            _p("Chevron", "CHEVRON"),
            _p("JPMorgan Chase", "JPMORGAN-AS3486", "JPMORGAN-AS7743"),
            _p("Barclays", "Barclays Bank plc"),
            _p("BNP Paribas", "Bnp Paribas S.A."),
            _p("ING", "ING Bank N.V."),
            _p("Santander", "Santander Global Technology, S.L.U"),
            _p("American Express", "AMERICAN-EXPRESS"),
            _p("Accenture", "Accenture B. V.", "ACCENTURE", "Accenture UK Limited"),
            _p("PwC", "Pricewaterhousecoopers Services Limited"),
            _p("Zscaler", "ZSCALER-SJC1", "Zscaler Switzerland GmbH", "ZSCALER-INC"),
            _p("Netskope", "NETSKOPE"),
        ),
        # Commercial VPN exits.  Most consumer VPNs rent from a few hosts (M247 and Datacamp /
        # CDN77 above all), so those carry most of the weight; the rest are providers' own ASNs.
        "vpn": (
            _p(
                "M247 (NordVPN, PIA, Surfshark, ... exits)",
                "M247 Europe SRL",
                "M247 UK Ltd",
                "M247 Ltd",
                weight=0.30,
            ),
            _p("Datacamp / CDN77 (VPN exits)", "Datacamp Limited", weight=0.25),
            _p(
                "NordVPN (Tefincom / Packethub)",
                "TEFINCOM S.A.",
                "PacketHub S.A.",
                "Packethub s.a.",
                weight=0.15,
            ),
            _p("Mullvad", "31173 Services AB", "Mullvad VPN AB", weight=0.06),
            _p("Proton VPN", "Proton AG", weight=0.06),
            _p("3xK Tech (VPN hosting)", "3xK Tech GmbH", weight=0.04),
            _p("Privado VPN", "Privado Networks AG", weight=0.02),
            _p("VPNtranet", "VPNTRANET-LLC", weight=0.02),
            _p("Windscribe", "WINDSCRIBE", weight=0.02),
            _p("Perimeter 81", "PERIMETER-81-LLC", "Perimeter 81 LTD", weight=0.02),
            _p("EGIHosting (VPN exits)", "EGIHOSTING", weight=0.06),
        ),
    }
)

#: Exact geoip2fast ASN names of each kind (Tor's come from the exit snapshot, see ``tor_asn_names``).
ASN_NAMES: Final[Mapping[NetKind, frozenset[str]]] = MappingProxyType(
    {kind: frozenset(n for prov in provs for n in prov.asn_names) for kind, provs in _CATALOGUE.items()}
)

#: Campus ASN of well-known universities, by e-mail domain: pass as ``asn_name`` so a class at
#: stanford.edu egresses from Stanford's own block.  Universities without their own ASN map to
#: the research network that carries their traffic (Oxford -> Jisc, ETH -> SWITCH, Tsinghua ->
#: CERNET, IIT Bombay -> ERNET).
UNIVERSITY_ASN: Final[Mapping[str, str]] = MappingProxyType(
    {
        "stanford.edu": "STANFORD",
        "mit.edu": "MIT-GATEWAYS",
        "berkeley.edu": "UCB",
        "ucla.edu": "UCLA",
        "ucsd.edu": "UCSD",
        "harvard.edu": "HARVARD-UNIV",
        "cmu.edu": "CMU-ROUTER",
        "princeton.edu": "PRINCETON-AS",
        "columbia.edu": "COLUMBIA-GW",
        "cornell.edu": "CORNELL",
        "umich.edu": "UMICH-AS-5",
        "illinois.edu": "UIUC",
        "utexas.edu": "UTEXAS",
        "gatech.edu": "GEORGIA-TECH",
        "washington.edu": "WASHINGTON-AS",
        "nyu.edu": "NYU-DOMAIN",
        "utoronto.ca": "UTORONTO-AS",
        "ubc.ca": "UBC",
        "ox.ac.uk": "Jisc Services Limited",
        "cam.ac.uk": "Jisc Services Limited",
        "imperial.ac.uk": "Jisc Services Limited",
        "ethz.ch": "SWITCH",
        "epfl.ch": "SWITCH",
        "tum.de": "Technical University of Munich",
        "rwth-aachen.de": "RWTH Aachen University",
        "u-tokyo.ac.jp": "The University of Tokyo",
        "kyoto-u.ac.jp": "Kyoto University",
        "nus.edu.sg": "NUS Information Technology",
        "ntu.edu.sg": "Nanyang Technological University",
        "kaist.ac.kr": "Korea Advanced Institute of Science and Technology",
        "snu.ac.kr": "Seoul National University",
        "iitb.ac.in": "Education and Research Network",
        "usp.br": "UNIVERSIDADE DE SAO PAULO",
        "unimelb.edu.au": "The University of Melbourne, Melbourne, Victoria",
        "tsinghua.edu.cn": "China Education and Research Network Center",
        "pku.edu.cn": "China Education and Research Network Center",
        "sjtu.edu.cn": "China Education and Research Network Center",
        "hku.hk": "The University of Hong Kong",
        "ntu.edu.tw": "National Taiwan University",
    }
)

# Tor exit relays: "CIDR COUNTRY offset offset ..." where CIDR is the announced block holding the
# exits (as geoip2fast reports it) and each offset is an exit's distance from the block's first
# address.  A snapshot of the Tor Project's exit list, keeping only blocks with >= 3 exits (the
# big exit operators carry most Tor traffic).  A block may span several lines.
_TOR_EXIT_DATA: Final[str] = """
2.57.122.0/24 RO 58 215 246
2.58.56.0/24 NL 43 90 220 248
2.58.95.0/24 DE 45 47 53 59
5.2.64.0/20 NL 994 4019 4030
5.42.80.0/21 SE 232 233 234 235 610
5.45.96.0/20 DE 674 1629 2224
5.255.96.0/19 NL 218 477 535 663 773 876 892 915 1050 1243 1290 1411 1579 1982 2027 2250 2287
5.255.96.0/19 NL 3904 4906 4922 5432 5736 5876 7076 7318 7465 7577 7620 8158
23.137.248.0/24 NL 100 139 152
23.137.249.128/25 NL 15 22 57 99 112
23.137.250.0/23 NL 34 317 318
23.154.177.0/24 US 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25
23.184.48.0/24 US 101 127 128
37.228.128.0/23 FI 280 319 384 387
45.66.35.0/24 NL 10 20 21 35
45.95.168.0/22 HR 355 378 440 479 480 481 482 483 484 485 486 511
45.138.16.0/24 PL 42 76 107 113 203 222 230 240 249
45.141.215.0/24 PL 21 56 61 62 63 80 81 88 90 95 97 110 111 114 169 200
45.151.167.0/24 DE 10 11 12 13
46.183.216.0/21 LV 1716 1717 1719 1720 1721
51.15.0.0/16 FR 15119 58221 63904
51.81.0.0/16 US 56894 65038 65039
51.89.0.0/16 GB 35379 39280 42245
77.48.0.0/16 CZ 7372 7404 7407
77.91.84.0/22 SE 403 607 847
82.153.138.0/24 GB 48 79 120
82.221.128.0/19 IS 191 773 839 3006
84.54.51.0/24 NL 61 68 69
84.247.160.0/19 DE 1331 1332 1333
85.204.116.0/24 RO 88 139 211
87.118.64.0/18 DE 11803 12844 13402 13415 14878 14899
89.147.108.0/22 IS 56 62 209 482 630 666 726 892
91.208.75.0/24 RO 3 4 153 156 178 239
91.219.236.0/22 HU 101 312 934
93.95.224.0/21 IS 397 1149 1229 1590 1701
94.177.106.0/24 AE 37 46 55 59
101.99.80.0/20 MY 3251 3254 3266 3270
104.167.242.0/24 US 116 117 118
104.244.72.0/21 LU 115 132 299 392 446 449 535 609 842 1359 1360 1472 1488 1698 1769 1836 1842
104.244.72.0/21 LU 1853 1970
107.189.0.0/21 LU 265 352 416 620 779 1036 1233 1287 1401 1660 1840 1933 1936
107.189.8.0/22 LU 5 56 65 133 181 226 238 653 687 848 879 934
107.189.12.0/23 LU 347 436 507 509
107.189.14.0/24 LU 4 43 106
107.189.28.0/22 LU 199 359 581 598 748 801 902 993 1000
109.70.100.0/24 AT 1 2 3 4 5 6 65 66 67 68 69 70 71
130.193.8.0/21 CZ 533 1871 1978
144.172.73.0/24 US 6 11 13
144.172.118.0/23 US 4 41 57
146.59.0.0/16 FR 8998 9206 60124
162.247.74.0/24 US 7 27 74 200 201 202 204 206 213 216 217
171.25.193.0/24 SE 20 25 77 79 80 234 235
172.81.128.0/21 US 852 907 924 936
173.232.194.0/23 US 393 400 402
178.17.160.0/20 MD 2583 2744 2918 3598 3748 3782
178.218.144.0/24 IT 18 51 99
179.43.128.0/18 CH 16 1554 8014 8130 8131 8132 8133 8134 8135 8136 8137 13882 14056
185.100.84.0/22 RO 278 279 280 281 388 809 904 907 942 960 1018 1021
185.129.61.0/24 DK 1 2 3 4 5 6 7 8 9 10 129
185.181.60.0/22 NO 274 371 398
185.195.71.0/24 CH 2 3 4 5 7 8 9 10 11 12 244
185.220.100.0/24 DE 240 241 242 243 244 245 246 247 248 249 250 251 252 253 254
185.220.101.0/24 DE 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28
185.220.101.0/24 DE 29 30 31 64 65 66 67 68 69 70 71 72 73 74 75 76 77 78 79 80 81 82 83 84 85
185.220.101.0/24 DE 86 87 88 89 90 96 97 98 99 100 101 102 103 104 105 106 107 108 109 110 128
185.220.101.0/24 DE 129 130 131 132 133 134 135 136 137 138 139 140 141 142 143 144 145 146 147
185.220.101.0/24 DE 148 149 150 151 152 153 154 155 156 157 158 159 160 161 162 163 164 165 166
185.220.101.0/24 DE 167 168 169 170 171 172 173 174 175 176 177 178 179 180 181 182 183 184 185
185.220.101.0/24 DE 186 187 188 189 190 191
185.220.103.0/24 US 4 5 6 7 8 9
185.241.208.0/24 PL 54 71 115 196 202 204 206 232 236 243
185.243.218.0/24 NO 35 41 46 61 89 95 110 202 204
185.246.188.0/23 NL 67 73 74 140 141 142 355
188.68.32.0/19 DE 2495 4587 5351
192.42.116.0/22 NL 13 14 15 17 18 19 20 22 23 24 25 26 27 173 174 175 176 177 178 179 180 181
192.42.116.0/22 NL 182 183 184 185 186 187 188 189 191 192 193 194 195 196 197 198 199 200 201
192.42.116.0/22 NL 202 203 204 208 209 210 211 212 213 214 215 216 217 218 219 220 221
193.35.18.0/24 NL 49 77 94 95 96 98 105 120
193.189.100.0/24 SE 194 195 196 197 198 199 200 201 202 203 204 205 206
193.218.118.0/23 UA 91 133 182
193.239.232.0/24 SE 102 228 230
195.176.0.0/17 CH 787 788 791 792
198.98.48.0/20 US 20 33 192 459 711 957 1416 1585 3162
199.195.248.0/21 US 470 677 846 887 1404 1436 1460 1527
204.85.176.0/20 US 3847 3848 3849
205.185.112.0/20 US 436 1058 1429 1827 2474 2909 3248 3265
209.141.32.0/19 US 3787 4786 4894 5044 5835 5914 7028 7751
"""


def _parse_tor_exits() -> dict[tuple[str, str], tuple[int, ...]]:
    """``(cidr, country) -> sorted exit offsets`` from ``_TOR_EXIT_DATA`` (pure; rebuilt per call)."""
    out: dict[tuple[str, str], set[int]] = {}
    for line in _TOR_EXIT_DATA.split("\n"):
        parts = line.split()
        if parts:
            out.setdefault((parts[0], parts[1]), set()).update(int(x) for x in parts[2:])
    return {key: tuple(sorted(offs)) for key, offs in out.items()}


# ---------------------------------------------------------------------------------------------
# geoip2fast tables (read by distillshield.enrich._geo)
# ---------------------------------------------------------------------------------------------
#: Smallest usable blocks: an IPv4 /29 (6 hosts) and an IPv6 /64 (one LAN).
_MAX_PREFIX: Final[Mapping[bool, int]] = MappingProxyType({False: 29, True: 64})


# ---------------------------------------------------------------------------------------------
# pools: the networks of one kind (optionally one country / ASN), with sampling weights
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Pool:
    """Candidate networks of one kind and the cumulative probability of picking each."""

    kind: NetKind
    v6: bool
    start: npt.NDArray[Any]  # first address (int64 for IPv4, Python int for IPv6)
    prefix: npt.NDArray[np.int64]
    country: ObjArray
    asn: ObjArray
    provider: npt.NDArray[np.int64]
    cdf: npt.NDArray[np.float64]
    exits: tuple[npt.NDArray[np.int64], ...] | None = None  # Tor: exit addresses per network

    def __len__(self) -> int:
        return len(self.prefix)

    def subset(self, mask: npt.NDArray[np.bool_], provider_weight: npt.NDArray[np.float64]) -> _Pool:
        idx = np.flatnonzero(mask)
        exits = None if self.exits is None else tuple(self.exits[i] for i in idx)
        prefix = self.prefix[idx]
        provider = self.provider[idx]
        return _Pool(
            self.kind,
            self.v6,
            self.start[idx],
            prefix,
            self.country[idx],
            self.asn[idx],
            provider,
            _cdf(self.v6, prefix, provider, provider_weight, exits),
            exits,
        )

    def cidr(self, i: int) -> str:
        addr = (
            ipaddress.IPv6Address(int(self.start[i]))
            if self.v6
            else ipaddress.IPv4Address(int(self.start[i]))
        )
        return f"{addr}/{int(self.prefix[i])}"

    def network(self, i: int) -> Network:
        return Network(self.cidr(i), str(self.asn[i]), str(self.country[i]), self.kind)

    def capacity(self, idx: npt.NDArray[np.int64], n: int) -> npt.NDArray[np.int64]:
        """How many distinct addresses each picked network can give (capped at ``n``)."""
        if self.exits is not None:
            return np.array([len(self.exits[i]) for i in idx], dtype=np.int64)
        if self.v6:
            return np.full(len(idx), n, dtype=np.int64)
        hosts: npt.NDArray[np.int64] = (np.int64(1) << (32 - self.prefix[idx])) - 2
        return np.minimum(hosts, n)


def _cdf(
    v6: bool,
    prefix: npt.NDArray[np.int64],
    provider: npt.NDArray[np.int64],
    provider_weight: npt.NDArray[np.float64],
    exits: tuple[npt.NDArray[np.int64], ...] | None,
) -> npt.NDArray[np.float64]:
    """Cumulative pick probabilities.

    Within an operator, an IPv4 network is picked in proportion to its addresses (a random
    subscriber or VM of that operator is most likely in one of its big blocks), a Tor block in
    proportion to its exits, and an IPv6 network in proportion to sqrt(its /64 subnets) (IPv6
    allocation sizes are policy, not usage).  An operator's weight is its curated share or, when
    none is curated (NaN), sqrt(its total IPv4 addresses / IPv6 /64s here): big ISPs stay ahead
    of small ones without one incumbent swallowing every draw.
    """
    if len(prefix) == 0:
        return np.zeros(0)
    if exits is not None:
        size = np.array([len(e) for e in exits], dtype=np.float64)
    else:
        size = np.exp2((64.0 if v6 else 32.0) - prefix.astype(np.float64))
    w = np.sqrt(size) if v6 else size
    n_prov = len(provider_weight)
    per_prov_w = np.bincount(provider, weights=w, minlength=n_prov)
    per_prov_size = np.bincount(provider, weights=size, minlength=n_prov)
    pw = np.where(np.isnan(provider_weight), np.sqrt(per_prov_size), provider_weight)
    pw = np.where(per_prov_w > 0, pw, 0.0)
    p = pw[provider] * w / per_prov_w[provider]
    cdf = np.cumsum(p / p.sum())
    cdf[-1] = 1.0
    return cdf


def _split_by_country(table: _Table, start: int, last: int, prefix: int) -> list[tuple[int, int, str]]:
    """The parts of ASN block [start, last] that each lie in one geoip2fast country block.

    Both tables hold CIDR-aligned blocks, so an ASN block either sits inside one country block or
    contains whole country blocks.
    """
    width = 128 if table.v6 else 32
    i = int(np.searchsorted(table.country_first, start, side="right")) - 1
    if i >= 0 and table.country_last[i] >= last:
        code = table.country_codes[int(table.country_idx[i])]
        return [] if code is None else [(start, prefix, code)]
    out: list[tuple[int, int, str]] = []
    j = max(i, 0)
    while j < len(table.country_first) and table.country_first[j] <= last:
        first, end = int(table.country_first[j]), int(table.country_last[j])
        code = table.country_codes[int(table.country_idx[j])]
        if first >= start and end <= last and code is not None:
            out.append((first, width - (end - first + 1).bit_length() + 1, code))
        j += 1
    return out


def _build_pool(table: _Table, kind: NetKind) -> _Pool:
    """Every network of ``kind`` (all countries), with the kind's global weights."""
    if kind == "tor":
        return _build_tor_pool(table)
    providers = _CATALOGUE[kind]
    prov_of_name = {name: k for k, prov in enumerate(providers) for name in prov.asn_names}
    prov_of_id = np.full(len(table.asn_names), -1, dtype=np.int64)
    for asn_id, name in enumerate(table.asn_names):
        prov_of_id[asn_id] = prov_of_name.get(name, -1)
    rows = np.flatnonzero(prov_of_id[table.asn_idx] >= 0)
    max_prefix = _MAX_PREFIX[table.v6]
    starts: list[int] = []
    prefixes: list[int] = []
    countries: list[str] = []
    asns: list[str] = []
    provs: list[int] = []
    for r in rows.tolist():
        if int(table.asn_prefix[r]) > max_prefix:  # too small to hold a network of its own
            continue
        asn_id = int(table.asn_idx[r])
        for s, p, c in _split_by_country(
            table, int(table.asn_first[r]), int(table.asn_last[r]), int(table.asn_prefix[r])
        ):
            home = providers[int(prov_of_id[asn_id])].home
            if p <= max_prefix and (not home or c in home):
                starts.append(s)
                prefixes.append(p)
                countries.append(c)
                asns.append(table.asn_names[asn_id])
                provs.append(int(prov_of_id[asn_id]))
    weights = np.array([np.nan if p.weight is None else p.weight for p in providers], dtype=np.float64)
    prefix_a = np.array(prefixes, dtype=np.int64)
    prov_a = np.array(provs, dtype=np.int64)
    return _Pool(
        kind,
        table.v6,
        np.array(starts, dtype=object if table.v6 else np.int64),
        prefix_a,
        np.array(countries, dtype=object),
        np.array(asns, dtype=object),
        prov_a,
        _cdf(table.v6, prefix_a, prov_a, weights, None),
    )


def _build_tor_pool(table: _Table) -> _Pool:
    """Tor exit blocks whose exits all still look up to the shipped (country, ASN) in ``table``."""
    starts: list[int] = []
    prefixes: list[int] = []
    countries: list[str] = []
    asns: list[str] = []
    exits: list[npt.NDArray[np.int64]] = []
    for (cidr, country), offsets in _parse_tor_exits().items():
        net = ipaddress.IPv4Network(cidr)
        base, last = int(net.network_address), int(net.broadcast_address)
        ips = [base + o for o in offsets if 0 < o < net.num_addresses - 1]
        asn = table.asn_at(ips[0]) if ips else None
        keep = [ip for ip in ips if table.country_at(ip)[1] == country and table.asn_at(ip) == asn]
        if asn is None or not keep or not all(base <= ip <= last for ip in keep):
            continue
        starts.append(base)
        prefixes.append(net.prefixlen)
        countries.append(country)
        asns.append(asn)
        exits.append(np.array(keep, dtype=np.int64))
    prefix_a = np.array(prefixes, dtype=np.int64)
    prov_a = np.zeros(len(prefixes), dtype=np.int64)
    ex = tuple(exits)
    return _Pool(
        "tor",
        False,
        np.array(starts, dtype=np.int64),
        prefix_a,
        np.array(countries, dtype=object),
        np.array(asns, dtype=object),
        prov_a,
        _cdf(False, prefix_a, prov_a, np.array([np.nan]), ex),
        ex,
    )


# ---------------------------------------------------------------------------------------------
# drawing
# ---------------------------------------------------------------------------------------------
def _pick(cdf: npt.NDArray[np.float64], n: int, rng: np.random.Generator) -> npt.NDArray[np.int64]:
    """``n`` pool rows by probability, distinct while the pool lasts, then with repetition."""
    size = len(cdf)
    k = min(n, size)
    if k * 4 <= size:
        # Few picks from a big pool: rejection sampling on the CDF (O(k log N), no O(N) pass).
        chosen: list[int] = []
        seen: set[int] = set()
        for _ in range(64):
            draws = np.minimum(np.searchsorted(cdf, rng.random(k - len(chosen)), side="right"), size - 1)
            for d in draws.tolist():
                if d not in seen:
                    seen.add(d)
                    chosen.append(d)
            if len(chosen) == k:
                break
        first = np.array(chosen, dtype=np.int64)
        if len(first) < k:  # extremely skewed weights: finish without replacement exactly
            p = np.diff(cdf, prepend=0.0)
            p[first] = 0.0
            rest = rng.choice(size, size=k - len(first), replace=False, p=p / p.sum())
            first = np.concatenate([first, rest.astype(np.int64)])
    else:
        p = np.diff(cdf, prepend=0.0)
        first = rng.choice(size, size=k, replace=False, p=p / p.sum()).astype(np.int64)
    if n <= size:
        return first
    extra = np.minimum(np.searchsorted(cdf, rng.random(n - size), side="right"), size - 1)
    return np.concatenate([first, extra.astype(np.int64)])


def _v4_offsets(
    size: int, n: int, rng: np.random.Generator, distinct: bool, cidr: str
) -> npt.NDArray[np.int64]:
    """Host offsets in a block of ``size`` addresses, never 0 (network) nor size-1 (broadcast)."""
    usable = size - 2
    if usable < 1:
        raise ValueError(f"{cidr} has no host addresses")
    if distinct:
        if n > usable:
            raise ValueError(f"{cidr} has {usable} host addresses; {n} distinct requested")
        return rng.choice(usable, size=n, replace=False).astype(np.int64) + 1
    return rng.integers(1, size - 1, size=n, dtype=np.int64)


def _v6_offsets(host_bits: int, n: int, rng: np.random.Generator, distinct: bool) -> list[int]:
    """Random host offsets (never all-zeros nor all-ones) in a block with ``host_bits`` free bits."""
    mask = (1 << host_bits) - 1
    out: list[int] = []
    seen: set[int] = set()
    while len(out) < n:
        m = n - len(out)
        lo = rng.integers(0, 2**64, size=m, dtype=np.uint64).tolist()
        hi = rng.integers(0, 2**64, size=m, dtype=np.uint64).tolist() if host_bits > 64 else [0] * m
        for h, low in zip(hi, lo, strict=True):
            off = ((h << 64) | low) & mask
            if off in (0, mask) or (distinct and off in seen):
                continue
            seen.add(off)
            out.append(off)
    return out


def _format_v4(ints: npt.NDArray[np.int64]) -> ObjArray:
    """Dotted quads for many IPv4 integers at once (pyarrow string kernels, no Python loop)."""
    if len(ints) < 256:  # pyarrow's per-call overhead dominates small batches
        return np.array(
            [f"{x >> 24}.{(x >> 16) & 255}.{(x >> 8) & 255}.{x & 255}" for x in ints.tolist()], dtype=object
        )
    parts = [pa.array((ints >> shift) & 255).cast(pa.string()) for shift in (24, 16, 8, 0)]
    joined = pc.binary_join_element_wise(*parts, ".")
    return np.asarray(joined.to_numpy(zero_copy_only=False), dtype=object)


def _format_v6(ints: list[int]) -> ObjArray:
    return np.array([str(ipaddress.IPv6Address(i)) for i in ints], dtype=object)


def _allocate(
    n: int, caps: npt.NDArray[np.int64], rng: np.random.Generator
) -> tuple[npt.NDArray[np.int64], int]:
    """Spread ``n`` draws evenly over networks without exceeding any network's capacity.

    Returns the per-network counts and how many draws did not fit (to be drawn with repetition).
    """
    k = len(caps)
    if int(caps.sum()) <= n:
        return caps.copy(), n - int(caps.sum())
    counts = rng.multinomial(n, np.full(k, 1.0 / k)).astype(np.int64)
    while True:
        over = np.maximum(counts - caps, 0)
        excess = int(over.sum())
        if excess == 0:
            return counts, 0
        counts -= over
        spare = (caps - counts).astype(np.float64)
        counts += rng.multinomial(excess, spare / spare.sum()).astype(np.int64)


class AddressSpace:
    """Real IPv4/IPv6 address space by network kind and country, drawn deterministically.

    Construction is free; the geoip2fast tables load on first use (well under a second) and each
    kind's network pool is built on first request and cached on the instance.  All randomness
    comes from the ``numpy.random.Generator`` passed in, so a seed fixes every draw, and a
    call's result does not depend on which calls came before it.

    Country rule: ``country`` is an ISO code as geoip2fast reports it.  When that country has
    no network of the kind (say, ``campus`` in a country without a listed university), the
    draw falls back to the kind's whole worldwide pool with its usual weights; use
    :meth:`countries` to see where a kind is available.
    """

    def __init__(self) -> None:
        self._tables: dict[bool, _Table] = {}
        self._pools: dict[tuple[NetKind, bool, str | None, str | None], _Pool] = {}
        self._tor_exits: dict[tuple[str, str], npt.NDArray[np.int64]] | None = None

    # ---- public API ------------------------------------------------------------------------
    def networks(
        self,
        kind: NetKind,
        n: int,
        rng: np.random.Generator,
        *,
        country: str | None = None,
        v6: bool = False,
        asn_name: str | None = None,
    ) -> list[Network]:
        """``n`` networks of ``kind`` (distinct while the pool lasts, then repeating).

        ``asn_name`` restricts the draw to one operator (an exact geoip2fast name from
        :data:`ASN_NAMES`), e.g. ``"STANFORD"`` for a Stanford class.
        """
        _check_n(n)
        pool = self._pool(kind, v6, country, asn_name)
        return [pool.network(int(i)) for i in _pick(pool.cdf, n, rng)]

    def addresses(
        self, network: Network, n: int, rng: np.random.Generator, *, distinct: bool = True
    ) -> ObjArray:
        """``n`` IP strings inside ``network`` (never its network or broadcast address).

        For a Tor network the addresses are its known exit relays.  ``distinct=True`` raises
        ``ValueError`` when the network cannot hold ``n`` different addresses.
        """
        _check_n(n)
        net = ipaddress.ip_network(network.cidr)
        if network.kind == "tor" and isinstance(net, ipaddress.IPv4Network):
            exits = self._tor_exit_map().get((network.cidr, network.country))
            if exits is not None:
                return _format_v4(_choose_exits(exits, n, rng, distinct, network.cidr))
        base = int(net.network_address)
        if isinstance(net, ipaddress.IPv6Network):
            if distinct and net.prefixlen >= 127:
                raise ValueError(f"{network.cidr} has no host addresses")
            return _format_v6([base + o for o in _v6_offsets(128 - net.prefixlen, n, rng, distinct)])
        return _format_v4(base + _v4_offsets(net.num_addresses, n, rng, distinct, network.cidr))

    def sample(
        self,
        kind: NetKind,
        n: int,
        rng: np.random.Generator,
        *,
        country: str | None = None,
        v6: bool = False,
        asn_name: str | None = None,
    ) -> ObjArray:
        """``n`` IPs of ``kind`` spread over about sqrt(n) networks, in random order.

        Distinct while the picked networks have room (Tor exits and tiny country pools can run
        out; then addresses repeat, as real shared exits do).
        """
        _check_n(n)
        if n == 0:
            return np.empty(0, dtype=object)
        pool = self._pool(kind, v6, country, asn_name)
        k = min(len(pool), max(1, math.isqrt(n - 1) + 1))
        idx = _pick(pool.cdf, k, rng)
        caps = pool.capacity(idx, n)
        if int(caps.sum()) < n and k < len(pool):  # not enough room: take more networks
            idx = _pick(pool.cdf, len(pool), rng)
            caps = pool.capacity(idx, n)
            enough = int(np.searchsorted(np.cumsum(caps), n)) + 1
            idx, caps = idx[: max(k, enough)], caps[: max(k, enough)]
        counts, overflow = _allocate(n, caps, rng)
        if overflow:
            counts = counts + rng.multinomial(overflow, np.full(len(idx), 1.0 / len(idx))).astype(np.int64)
        chunks_v4: list[npt.NDArray[np.int64]] = []
        chunks_v6: list[int] = []
        for i, c, cap in zip(idx.tolist(), counts.tolist(), caps.tolist(), strict=True):
            if c == 0:
                continue
            distinct_part, repeat_part = min(c, cap), max(0, c - cap)
            if pool.exits is not None:
                ex = pool.exits[i]
                chunks_v4.append(_choose_exits(ex, distinct_part, rng, True, pool.cidr(i)))
                if repeat_part:
                    chunks_v4.append(_choose_exits(ex, repeat_part, rng, False, pool.cidr(i)))
            elif pool.v6:
                base = int(pool.start[i])
                host_bits = 128 - int(pool.prefix[i])
                chunks_v6.extend(base + o for o in _v6_offsets(host_bits, c, rng, True))
            else:
                base = int(pool.start[i])
                size = 1 << (32 - int(pool.prefix[i]))
                chunks_v4.append(base + _v4_offsets(size, distinct_part, rng, True, pool.cidr(i)))
                if repeat_part:
                    chunks_v4.append(base + _v4_offsets(size, repeat_part, rng, False, pool.cidr(i)))
        out = _format_v6(chunks_v6) if pool.v6 else _format_v4(np.concatenate(chunks_v4))
        return out[rng.permutation(len(out))]

    def lookup(self, ip: str) -> tuple[str | None, str | None]:
        """(country, ASN name) of ``ip`` as geoip2fast reports them; None where it has none.

        Reproduces ``GeoIP2Fast.lookup`` on the same bundled data files: IPv4 through
        ``geoip2fast-asn.dat.gz``, IPv6 through ``geoip2fast-asn-ipv6.dat.gz`` (reserved ranges,
        unknown networks and ``"<unknown>"`` ASN names give None).  One deliberate difference:
        IPv6 addresses inside ``::/96`` (``::1``, IPv4-compatible forms) give (None, None),
        where geoip2fast reads them as IPv4 integers.
        """
        addr = ipaddress.ip_address(ip)
        table = self._table(addr.version == 6)
        value = int(addr)
        row, country = table.country_at(value)
        if row < 0:
            return None, None
        return country, table.asn_at(value)

    def countries(self, kind: NetKind, *, v6: bool = False) -> list[str]:
        """Countries (geoip2fast codes) in which ``kind`` has networks, sorted."""
        return sorted({str(c) for c in self._pool(kind, v6, None, None).country})

    def tor_asn_names(self) -> frozenset[str]:
        """ASN names of the shipped Tor exit blocks (as geoip2fast names them)."""
        return frozenset(str(a) for a in self._pool("tor", False, None, None).asn)

    # ---- internals -------------------------------------------------------------------------
    def _table(self, v6: bool) -> _Table:
        table = self._tables.get(v6)
        if table is None:
            table = self._tables[v6] = _load_table(v6)
        return table

    def _pool(self, kind: NetKind, v6: bool, country: str | None, asn_name: str | None) -> _Pool:
        if kind not in NET_KINDS:
            raise ValueError(f"unknown network kind {kind!r}; expected one of {', '.join(NET_KINDS)}")
        if kind == "tor" and v6:
            raise ValueError("no IPv6 Tor exits are shipped; use v6=False for kind='tor'")
        cc = None if country is None else country.upper()
        key = (kind, v6, cc, asn_name)
        pool = self._pools.get(key)
        if pool is not None:
            return pool
        if cc is None and asn_name is None:
            pool = _build_pool(self._table(v6), kind)
            if len(pool) == 0:
                raise ValueError(f"no {'IPv6 ' if v6 else ''}networks of kind {kind!r} in geoip2fast's data")
        else:
            base = (
                self._pool(kind, v6, None, asn_name) if cc is not None else self._pool(kind, v6, None, None)
            )
            if cc is None:  # asn_name only
                mask = base.asn == asn_name
                if not mask.any():
                    raise ValueError(f"no {kind} networks with ASN name {asn_name!r}")
            else:
                mask = base.country == cc
                if not mask.any():  # documented fallback: the kind's worldwide pool
                    mask = np.ones(len(base), dtype=bool)
            pool = base.subset(mask, self._provider_weights(kind))
        self._pools[key] = pool
        return pool

    @staticmethod
    def _provider_weights(kind: NetKind) -> npt.NDArray[np.float64]:
        if kind == "tor":
            return np.array([np.nan])
        return np.array(
            [np.nan if p.weight is None else p.weight for p in _CATALOGUE[kind]], dtype=np.float64
        )

    def _tor_exit_map(self) -> dict[tuple[str, str], npt.NDArray[np.int64]]:
        if self._tor_exits is None:
            pool = self._pool("tor", False, None, None)
            assert pool.exits is not None
            self._tor_exits = {(pool.cidr(i), str(pool.country[i])): pool.exits[i] for i in range(len(pool))}
        return self._tor_exits


def _choose_exits(
    exits: npt.NDArray[np.int64], n: int, rng: np.random.Generator, distinct: bool, cidr: str
) -> npt.NDArray[np.int64]:
    if distinct:
        if n > len(exits):
            raise ValueError(f"{cidr} has {len(exits)} known Tor exits; {n} distinct requested")
        return exits[rng.choice(len(exits), size=n, replace=False)]
    return exits[rng.integers(0, len(exits), size=n)]


def _check_n(n: int) -> None:
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
