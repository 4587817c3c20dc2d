package gpt

// TypeName names well-known partition type GUIDs (upper-case string form).
func TypeName(g GUID) string {
	if n, ok := typeNames[g.String()]; ok {
		return n
	}
	return "Unknown"
}

// Type GUIDs that the volume layer acts on.
const (
	TypeLDMMetadata = "5808C8AA-7E8F-42E0-85D2-E1E90434CFB3"
	TypeLDMData     = "AF9B60A0-1431-4F62-BC68-3311714A69AD"
	TypeLinuxLVM    = "E6D6D379-F507-44C2-A23C-238F2A3DF928"
)

var typeNames = map[string]string{
	"C12A7328-F81F-11D2-BA4B-00A0C93EC93B": "EFI System",
	"024DEE41-33E7-11D3-9D69-0008C781F39F": "MBR partition scheme",
	"21686148-6449-6E6F-744E-656564454649": "BIOS boot",
	"EBD0A0A2-B9E5-4433-87C0-68B6B72699C7": "Microsoft basic data",
	"E3C9E316-0B5C-4DB8-817D-F92DF00215AE": "Microsoft reserved",
	"DE94BBA4-06D1-4D40-A16A-BFD50179D6AC": "Windows recovery environment",
	TypeLDMMetadata:                        "Windows LDM metadata",
	TypeLDMData:                            "Windows LDM data",
	"E75CAF8F-F680-4CEE-AFA3-B001E56EFC2D": "Windows Storage Spaces",
	"0FC63DAF-8483-4772-8E79-3D69D8477DE4": "Linux filesystem",
	TypeLinuxLVM:                           "Linux LVM",
	"A19D880F-05FC-4D3B-A006-743F0F84911E": "Linux RAID",
	"0657FD6D-A4AB-43C4-84E5-0933C84B4F4F": "Linux swap",
	"CA7D7CCB-63ED-4C53-861C-1742536059CC": "Linux LUKS",
	"933AC7E1-2EB4-4F13-B844-0E14E2AEF915": "Linux home",
	"4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709": "Linux root (x86-64)",
	"BC13C2FF-59E6-4262-A352-B275FD6F7172": "Linux extended boot",
	"7C3457EF-0000-11AA-AA11-00306543ECAC": "Apple APFS",
	"48465300-0000-11AA-AA11-00306543ECAC": "Apple HFS/HFS+",
	"AA31E02A-400F-11DB-9590-000C2911D1B8": "VMware VMFS",
	"9D275380-40AD-11DB-BF97-000C2911D1B8": "VMware kcore crash protection",
	"516E7CB4-6ECF-11D6-8FF8-00022D09712B": "FreeBSD data",
}
